"""What the demo seeds: its studies, its password, and the archives it configures."""

from __future__ import annotations

from dataclasses import dataclass

from pacsguard.domain import Sensitivity

__all__ = ["ARCHIVES_TOML", "PASSWORD", "STUDIES", "DemoStudy", "archive_of"]

PASSWORD = "Demo-password-2026"  # noqa: S105 - the demo prints it as its login

ARCHIVES_TOML = """
# Added by 'pacsguard demo': an embedded archive for each hospital (north-cardiology
# uses its parent zone's). 'pacsguard serve --site <this directory>' serves them.
[[archives]]
name = "north-pacs"
zone = "north"

[[archives]]
name = "south-pacs"
zone = "south"
"""


@dataclass(frozen=True)
class DemoStudy:
    uid: str
    zone: str
    patient: str
    modality: str
    sensitivity: Sensitivity
    description: str

    @property
    def archive(self) -> str:
        """The name of the embedded archive that holds it."""
        return archive_of(self.zone)


STUDIES = (
    DemoStudy("1.2.826.0.1.3680043.10.1.1", "north", "N-100", "CT", Sensitivity.INTERNAL, "CT chest"),
    DemoStudy("1.2.826.0.1.3680043.10.1.2", "north", "N-101", "MR", Sensitivity.SECRET, "MR brain (VIP)"),
    DemoStudy("1.2.826.0.1.3680043.10.2.1", "north-cardiology", "N-102", "US", Sensitivity.CONFIDENTIAL, "Echo"),
    DemoStudy("1.2.826.0.1.3680043.10.3.1", "south", "S-200", "CT", Sensitivity.INTERNAL, "CT abdomen"),
    DemoStudy("1.2.826.0.1.3680043.10.3.2", "south", "S-201", "CR", Sensitivity.INTERNAL, "Chest X-ray"),
)


def archive_of(zone: str) -> str:
    """The demo archive of ``zone`` (north-cardiology's is north's)."""
    return "south-pacs" if zone == "south" else "north-pacs"
