"""``policy explain --user --study``: the subject from the directory, the study from the
catalogue, the patient's consent directives from the database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pacsguard import config
from pacsguard.app import open_site
from pacsguard.cli import main
from pacsguard.directory import Operator
from pacsguard.domain import Sensitivity
from pacsguard.domain.decision import ConsentKind

STUDY = "1.2.826.0.1.3680043.8.498.1"


@pytest.fixture
def site(make_site: Callable[..., Path], add_person: Callable[..., None]) -> Path:
    """Alice is a north radiologist; the study belongs to south, internal, patient P1."""
    site = make_site()
    add_person(site, "alice", "north", "radiologist")
    with open_site(config.load(site)) as opened:
        opened.catalogue.record(STUDY, zone="south", archive="south-pacs", patient_id="P1", modality="CT")
        opened.catalogue.set_sensitivity(STUDY, Sensitivity.INTERNAL, by="root")
    return site


def _explain(site: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["policy", "explain", "--site", str(site), "--user", "alice", "--study", STUDY, *extra])
    return code, capsys.readouterr().out


def test_cross_zone_read_is_permitted_through_the_agreement(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _explain(site, capsys)
    assert code == 0
    assert "permit" in out.lower()
    assert "north-south-imaging" in out


def test_export_is_outside_the_agreement(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _explain(site, capsys, "--action", "export")
    assert code == 0
    assert "deny" in out.lower()


def test_a_patients_consent_directive_denies(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with open_site(config.load(site)) as opened:
        directive = opened.directory.consents.add("P1", ConsentKind.ONLY_ZONES, zones=["south"], by=Operator("root"))
    code, out = _explain(site, capsys)
    assert code == 0
    assert "deny" in out.lower()
    assert directive.id in out


def test_unknown_study_or_user_is_a_clear_error(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["policy", "explain", "--site", str(site), "--user", "alice", "--study", "1.2.3"]) == 2
    assert "archive sync" in capsys.readouterr().err
    assert main(["policy", "explain", "--site", str(site), "--user", "nobody", "--study", STUDY]) == 2
    assert main(["policy", "explain", "--site", str(site), "--study", STUDY]) == 2
    assert "--user" in capsys.readouterr().err
