"""``pacsguard audit import``: load audit files (pacsguard JSONL, FHIR, DICOM A.5 XML) into
the site's audit log, idempotently, keeping each event's own time and its provenance."""

from __future__ import annotations

import functools
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from pacsguard.cli._common import console, err_console, load_settings, site_option
from pacsguard.cli._directory import open_site_for_command
from pacsguard.errors import IngestError
from pacsguard.ingest.importer import FORMATS, Importer
from pacsguard.ingest.store import IngestStore

__all__ = ["import_command"]


@click.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True, help="Format of the files.")
@click.option("--source", default=None, help="Name of the system the files come from (part of the import key).")
@site_option
def import_command(files: tuple[Path, ...], fmt: str, source: str | None, site: Path | None) -> None:
    """Import audit events from FILES; importing the same events twice adds nothing.

    Each bad line is reported with its file and line number and the rest still loads;
    the exit status is then 1.
    """
    opened = open_site_for_command(load_settings(site))
    importer = Importer(opened.audit, IngestStore(opened.engine), opened.clock, source=source)
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    with Progress(*columns, console=err_console, transient=True) as progress:
        for path in files:
            task = progress.add_task(f"importing {path.name}", total=None)
            importer.import_file(path, fmt, functools.partial(progress.advance, task))
    report = importer.report
    for problem in report.problems:
        err_console.print(f"bad input: {problem}", markup=False)
    console.print(
        f"imported {report.imported} events, {report.duplicates} already imported, "
        f"{len(report.problems)} bad entries, from {len(files)} file(s)"
    )
    if report.problems:
        raise IngestError(f"{len(report.problems)} entries could not be imported (listed above); the rest loaded")
