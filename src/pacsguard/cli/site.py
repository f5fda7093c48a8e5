"""``pacsguard init`` and ``pacsguard config check``: scaffold and validate a site."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from pacsguard import demo as demo_module
from pacsguard import site as site_files
from pacsguard.cli._common import console, load_settings, site_option


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Write into a directory that is not empty.")
def init(directory: Path, force: bool) -> None:
    """Scaffold a site in DIRECTORY, with comments that explain every setting."""
    site_files.scaffold(directory, force=force)
    console.print(f"Created site in [bold]{directory}[/]. Next: edit zones.yaml, then")
    console.print(f"  pacsguard pki init --site {directory}")
    console.print(f"  pacsguard users add alice --zone <zone> --site {directory}")


@click.command("config-check")
@site_option
def check_config(site: Path | None) -> None:
    """Validate pacsguard.toml and zones.yaml of a site."""
    settings = load_settings(site)
    zones = site_files.load_zones(settings.site / "zones.yaml")
    console.print(f"{settings.site}: settings and {len(zones.zones)} zones, {len(zones.roles)} roles are valid")


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-site"),
    show_default=True,
    help="Where the demo site lives; reused when it exists.",
)
def demo(directory: Path) -> None:
    """Run the self-contained demo: a seeded site, its zones, users and decisions."""
    # Wide enough for the decision table even when the output is not a terminal.
    demo_module.run(directory, Console(highlight=False, width=max(console.width, 132)))
