"""How the ``[audit]`` section of ``pacsguard.toml`` (``config.AuditSettings``) becomes the
log's options and its witnesses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pacsguard.audit.canonical import Limits
from pacsguard.audit.log import AuditOptions
from pacsguard.audit.witness import FileWitness, Witness
from pacsguard.config import AuditSettings

__all__ = ["AuditSettings", "options", "witnesses"]


def options(settings: AuditSettings) -> AuditOptions:
    """The log's options from the settings."""
    return AuditOptions(
        head_every_events=settings.head_every_events,
        head_every_seconds=settings.head_every_seconds,
        limits=Limits(max_detail_bytes=settings.max_detail_bytes),
    )


def witnesses(settings: AuditSettings, resolve: Callable[[str], Path]) -> list[Witness]:
    """The configured witnesses; ``resolve`` makes a site-relative path absolute."""
    return [FileWitness(resolve(settings.witness_file))] if settings.witness_file else []
