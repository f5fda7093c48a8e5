"""Helpers the directory's commands share (users, consent): opening the site's directory,
who performs a change, times and periods from the command line, tables."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from rich.table import Table

from pacsguard.app import Site, open_site
from pacsguard.cli._common import load_settings
from pacsguard.config import Settings
from pacsguard.directory import Acting, By, Directory, Operator
from pacsguard.domain import Actor, AuditEvent, Validity
from pacsguard.domain.events import JsonValue

__all__ = ["_by", "_open", "_period", "_show_time", "_table", "_when", "open_site_for_command", "record_log_use"]

_RELATIVE = re.compile(r"^\+(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _open(site: Path | None) -> Directory:
    return open_site_for_command(load_settings(site)).directory


def record_log_use(site: Site, **detail: JsonValue) -> None:
    """Record that the local operator reads the audit log ("Audit Log Used", PS3.15
    A.5.3.2), durably and before anything is read; raises ``AuditUnavailable``."""
    actor = Actor(principal_id=Operator.current().id)
    site.audit.emit(AuditEvent("audit.log.used", site.clock.now(), actor=actor, detail=detail))


def open_site_for_command(settings: Settings) -> Site:
    """The whole site (audit log included), closed when the command ends."""
    opened = open_site(settings)
    click.get_current_context().call_on_close(opened.close)
    return opened


def _by(principal_id: str | None) -> By:
    return Acting(principal_id) if principal_id else Operator.current()


def _when(value: str | None, name: str) -> datetime | None:
    """An ISO date or time (UTC when no offset is given), or ``+7d``/``+12h``/``+30m``/``+2w``."""
    if value is None:
        return None
    relative = _RELATIVE.match(value.strip())
    if relative:
        return datetime.now(UTC) + timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: expected an ISO date such as 2026-12-31 or +7d", param_hint=name
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _period(start: str | None, end: str | None) -> Validity:
    try:
        return Validity(_when(start, "--from"), _when(end, "--until"))
    except ValueError:
        raise click.BadParameter("the period must end after it starts", param_hint="--until") from None


def _table(title: str, *columns: str) -> Table:
    """A table whose ids and role names never wrap (they are copied into other commands)."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, no_wrap=column in ("id", "roles now"))
    return table


def _show_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "—"
