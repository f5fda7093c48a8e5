"""The seeded, self-contained demo: ``pacsguard demo``.

It builds a demo site in a directory of its own and walks through what pacsguard can
do today, each step a real call into the same code the service runs.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.tree import Tree

from pacsguard import config
from pacsguard.domain.zones import ZoneTree
from pacsguard.site import load_zones, scaffold

__all__ = ["run"]


def run(directory: Path, console: Console) -> None:
    """Create (or reuse) the demo site in ``directory`` and show it."""
    if not (directory / "pacsguard.toml").exists():
        scaffold(directory)
    settings = config.load(directory)
    zones = load_zones(settings.site / "zones.yaml")
    console.rule(f"[bold]pacsguard demo[/] — site {settings.site}")
    console.print(_zone_tree(zones))


def _zone_tree(zones: ZoneTree) -> Tree:
    tree = Tree("[bold]security zones[/]")

    def add(node: Tree, zone_id: str) -> None:
        zone = zones.zones[zone_id]
        roles = ", ".join(r.ref.name for r in zone.roles) or "no roles of its own"
        branch = node.add(f"[bold]{zone.id}[/] {zone.name} — roles: {roles}")
        for child in zones.children(zone_id):
            add(branch, child)

    for root in sorted(zones.roots(), key=lambda z: z.id):
        add(tree, root.id)
    return tree
