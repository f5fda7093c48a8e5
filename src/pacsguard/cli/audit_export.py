"""``pacsguard audit export``: audit events as DICOM XML, FHIR NDJSON, JSONL or CSV.

Reading goes through one seam, ``EventSource.iter_events(since, until)``. Until the
audit log's storage is attached, the command reads a JSONL export (``--from-jsonl``).
Formats:

- ``dicom``: one PS3.15 A.5 ``AuditMessage`` per line (no XML declaration);
- ``fhir``: FHIR R4 AuditEvent resources as NDJSON (the FHIR Bulk Data format);
- ``jsonl``: every field of every event, one JSON object per line (lossless);
- ``csv``: a header and one row per event, defended against formula injection.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import click

from pacsguard.audit.export_dicom import AuditSource, to_dicom_xml
from pacsguard.audit.export_fhir import to_fhir_json
from pacsguard.audit.export_files import EventSource, JsonlEventSource, write_csv, write_jsonl
from pacsguard.audit.reader import LogReader
from pacsguard.cli._common import err_console, load_settings, site_option
from pacsguard.cli._directory import open_site_for_command, record_log_use
from pacsguard.domain import AuditEvent

__all__ = ["FORMATS", "export", "run_export"]

FORMATS = ("dicom", "fhir", "jsonl", "csv")


def _write_lines(lines: Iterable[str], out: IO[str]) -> int:
    n = 0
    for line in lines:
        out.write(line)
        out.write("\n")
        n += 1
    return n


def write_format(fmt: str, events: Iterable[AuditEvent], out: IO[str], source: AuditSource) -> int:
    """Write ``events`` to ``out`` in ``fmt``; returns how many were written."""
    if fmt == "dicom":
        return _write_lines((to_dicom_xml(e, source).decode("utf-8") for e in events), out)
    if fmt == "fhir":
        return _write_lines((to_fhir_json(e, source) for e in events), out)
    if fmt == "jsonl":
        return write_jsonl(events, out)
    return write_csv(events, out)


def run_export(
    source: EventSource,
    fmt: str,
    since: datetime | None,
    until: datetime | None,
    output: Path | None,
    audit_source: AuditSource | None = None,
) -> int:
    """Export the events within ``[since, until)``; returns the count.

    With ``output`` the file appears complete or not at all (written aside, then renamed).
    Raises ``AuditExportError`` when the source cannot be read.
    """
    events = source.iter_events(since, until)
    who = audit_source or AuditSource()
    if output is None:
        return write_format(fmt, events, sys.stdout, who)
    partial = output.with_name(output.name + ".part")
    try:
        with partial.open("w", encoding="utf-8", newline="", errors="replace") as out:
            count = write_format(fmt, events, out, who)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    return count


def _moment(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time, e.g. 2026-11-23T08:00:00+01:00") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@click.command("export")
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True, help="Output format.")
@click.option("--since", callback=_moment, help="Only events at or after this time (ISO 8601; UTC if no offset).")
@click.option("--until", callback=_moment, help="Only events before this time (ISO 8601; UTC if no offset).")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write here instead of standard output.",
)
@click.option(
    "--from-jsonl",
    "from_jsonl",
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
    default=None,
    help="Read events from a JSONL export (written by --format jsonl) instead of the site's log.",
)
@site_option
@click.option("--audit-source-id", default="pacsguard", show_default=True, help="AuditSourceID in the messages.")
def export(
    fmt: str,
    since: datetime | None,
    until: datetime | None,
    output: Path | None,
    from_jsonl: Path | None,
    audit_source_id: str,
    site: Path | None,
) -> None:
    """Export audit events between --since and --until in a standard format.

    Reading the site's log is itself recorded (``audit.log.used``) before any event is read.
    """
    if since is not None and until is not None and since >= until:
        raise click.BadParameter("--since must be before --until", param_hint="--since")
    source: EventSource
    if from_jsonl is not None:
        source = JsonlEventSource(from_jsonl)
    else:
        opened = open_site_for_command(load_settings(site))
        record_log_use(opened, export=fmt, since=_iso(since), until=_iso(until))
        source = LogReader(opened.engine)
    count = run_export(source, fmt, since, until, output, AuditSource(audit_source_id))
    if output is not None:
        err_console.print(f"exported {count} events to {output} ({fmt})")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
