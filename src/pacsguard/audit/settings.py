"""The ``[audit]`` section of ``pacsguard.toml``: when heads are signed, where they are witnessed.

Wire it into ``config.Settings`` as ``audit: AuditSettings = AuditSettings()``; the
composition root then builds the log with ``options()`` and ``witnesses(settings.path)``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from pacsguard.audit.canonical import Limits
from pacsguard.audit.log import AuditOptions
from pacsguard.audit.witness import FileWitness, Witness

__all__ = ["AuditSettings"]


class AuditSettings(BaseModel):
    """A signed head every ``head_every_events`` events or ``head_every_seconds``; a witness file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    head_every_events: int = Field(1000, ge=1)
    head_every_seconds: float = Field(60, gt=0)
    witness_file: str = ""  # heads appended as JSON lines; relative paths are under the site
    max_detail_bytes: int = Field(8192, ge=512)

    def options(self) -> AuditOptions:
        """The log's options from these settings."""
        return AuditOptions(
            head_every_events=self.head_every_events,
            head_every_seconds=self.head_every_seconds,
            limits=Limits(max_detail_bytes=self.max_detail_bytes),
        )

    def witnesses(self, resolve: Callable[[str], Path]) -> list[Witness]:
        """The configured witnesses; ``resolve`` makes a site-relative path absolute."""
        return [FileWitness(resolve(self.witness_file))] if self.witness_file else []
