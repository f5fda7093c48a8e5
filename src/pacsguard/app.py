"""The composition root: one site's components, built once from its settings.

``open_site`` opens the database (migrated), the audit log (signing key, head cadence,
witnesses), and the directory, whose every event goes into that audit log: the ``emit``
seam every component reports through. Whatever needs the whole system (the CLI, the
demo, the server) starts here and closes it when done.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from types import TracebackType

from sqlalchemy import Engine

from pacsguard.archives.catalogue import StudyCatalogue, ZoneRules, load_sensitivity_rules
from pacsguard.audit import AuditLog, load_signing_key
from pacsguard.audit import settings as audit_settings
from pacsguard.clock import Clock, SystemClock
from pacsguard.config import Settings
from pacsguard.directory import Directory
from pacsguard.directory.wiring import open_directory
from pacsguard.errors import ConfigError, Problem
from pacsguard.storage import make_engine, migrate

__all__ = ["SENSITIVITY_FILE", "Site", "open_audit_log", "open_site", "sensitivity_rules"]

SENSITIVITY_FILE = "sensitivity.yaml"


@dataclass
class Site:
    """A running site: its settings, database, audit log, directory and study catalogue."""

    settings: Settings
    engine: Engine
    audit: AuditLog
    directory: Directory
    catalogue: StudyCatalogue
    clock: Clock = field(default_factory=SystemClock)

    def close(self) -> None:
        """Stop the audit writer (everything acknowledged is durable already) and the pool."""
        self.audit.close()
        self.engine.dispose()

    def __enter__(self) -> Site:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


def open_audit_log(settings: Settings, engine: Engine, clock: Clock) -> AuditLog:
    """The site's audit log; heads are signed when the site has its signing key.

    Raises ``AuditUnavailable`` (tables unreadable) or ``ConfigError`` (a bad key file).
    """
    key_path = settings.path(settings.pki.signing_key)
    key = load_signing_key(key_path) if key_path.exists() else None
    return AuditLog(
        engine,
        signing_key=key,
        clock=clock,
        options=audit_settings.options(settings.audit),
        witnesses=audit_settings.witnesses(settings.audit, settings.path),
    )


def open_site(settings: Settings, clock: Clock | None = None) -> Site:
    """Open every stateful component of the site; close it with ``Site.close``."""
    clock = clock or SystemClock()
    engine = make_engine(settings.database_url, echo=settings.storage.echo)
    with contextlib.ExitStack() as undo:
        undo.callback(engine.dispose)
        migrate(engine)
        log = open_audit_log(settings, engine, clock)
        undo.callback(log.close)
        directory = open_directory(settings, engine, log, clock)
        catalogue = StudyCatalogue(engine, events=log, clock=clock, rules=sensitivity_rules(settings))
        undo.pop_all()
    return Site(settings, engine, log, directory, catalogue, clock)


def sensitivity_rules(settings: Settings) -> dict[str, ZoneRules]:
    """The per-zone default sensitivity rules of ``sensitivity.yaml``, if the site has one.

    Raises ``ConfigError`` naming the file, line and key of a bad rule.
    """
    path = settings.site / SENSITIVITY_FILE
    if not path.exists():
        return {}
    try:
        return load_sensitivity_rules(path)
    except OSError as exc:
        raise ConfigError(Problem(path, f"cannot read: {exc}")) from None
