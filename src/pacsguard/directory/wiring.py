"""Composition: a site's directory from its settings. The one place that chooses where
directory events go; swap ``event_sink`` for the audit log when it exists."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

from pacsguard.clock import Clock
from pacsguard.config import Settings
from pacsguard.directory.service import Directory
from pacsguard.domain import AuditEvent, EventSink
from pacsguard.site import load_zones
from pacsguard.storage import make_engine, migrate

__all__ = ["JsonLinesSink", "event_sink", "open_directory"]

EVENTS_FILE = "events.jsonl"


class JsonLinesSink:
    """Appends each event as one JSON line to a file (flushed and fsynced per event)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def emit(self, event: AuditEvent) -> None:
        line = json.dumps(asdict(event), default=_json_default, sort_keys=True)
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, frozenset | set | tuple):
        return sorted(value) if isinstance(value, frozenset | set) else list(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def event_sink(settings: Settings) -> EventSink:
    """Where the directory's events go for this site (until the audit log exists: a file)."""
    return JsonLinesSink(settings.site / EVENTS_FILE)


def open_directory(settings: Settings, clock: Clock | None = None) -> Directory:
    """Open the site's database, migrate it, load zones.yaml and build the directory.

    Raises ``ConfigError`` (zones.yaml) or ``StorageError`` (database).
    """
    zones = load_zones(settings.site / "zones.yaml")
    engine = make_engine(settings.database_url, echo=settings.storage.echo)
    migrate(engine)
    return Directory(engine, zones, settings.auth, event_sink(settings), clock)
