"""``pacsguard archive sync``: catalogue what an upstream DICOMweb archive already holds."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from pacsguard import site as site_files
from pacsguard.archives.catalogue import StudyCatalogue
from pacsguard.archives.dicomweb import DicomWebArchive
from pacsguard.archives.sync import SyncReport, sync
from pacsguard.cli._common import console, load_settings, site_option
from pacsguard.cli._directory import open_site_for_command


@click.group()
def archive() -> None:
    """Upstream archives: index what they hold into the study catalogue."""


@archive.command("sync")
@site_option
@click.option("--zone", required=True, help="The zone that owns the archive's studies.")
@click.option("--url", required=True, help="The archive's DICOMweb root, e.g. http://pacs:8042/dicom-web")
@click.option("--name", default=None, help="The archive's name in the catalogue (default: the zone's name).")
@click.option("--page-size", default=100, show_default=True, type=click.IntRange(1, 10000))
@click.option("--restart", is_flag=True, help="Start from the first page even if a run was interrupted.")
def sync_command(site: Path | None, zone: str, url: str, name: str | None, page_size: int, restart: bool) -> None:
    """Catalogue the studies of the DICOMweb archive at URL as owned by ZONE (resumable)."""
    settings = load_settings(site)
    zones = site_files.load_zones(settings.site / "zones.yaml")
    if zone not in zones:
        raise click.BadParameter(f"no zone {zone!r} in zones.yaml", param_hint="--zone")
    if not url.startswith(("http://", "https://")):
        raise click.BadParameter("give the archive's http:// or https:// DICOMweb root", param_hint="--url")
    catalogue = open_site_for_command(settings).catalogue
    report = asyncio.run(_run(url, name or zone, zone, catalogue, page_size, restart))
    state = "finished" if report.finished else "stopped early; run again to resume"
    console.print(
        f"{report.recorded} studies catalogued for zone [bold]{zone}[/] "
        f"(from offset {report.started_at_offset}, {report.skipped} skipped): {state}"
    )


async def _run(url: str, name: str, zone: str, catalogue: StudyCatalogue, page_size: int, restart: bool) -> SyncReport:
    upstream = DicomWebArchive(url, name=name)
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=False) as bar:
            task = bar.add_task(f"sync {name}", total=None)
            return await sync(
                upstream,
                zone,
                catalogue,
                lambda done: bar.update(task, completed=done),
                page_size=page_size,
                restart=restart,
            )
    finally:
        await upstream.aclose()
