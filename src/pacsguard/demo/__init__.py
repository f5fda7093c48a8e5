"""The seeded, self-contained demo (``pacsguard demo``): ``walkthrough`` builds the site
and shows the directory, the decision point, the monitor and the audit log through their
Python APIs; ``loop`` then drives the same site over HTTP, as a viewer, a browser and an
attacker would, through the one ASGI app ``pacsguard serve`` runs."""

from pacsguard.demo.walkthrough import MARKER, PASSWORD, run

__all__ = ["MARKER", "PASSWORD", "run"]
