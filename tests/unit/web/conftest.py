"""The API tests run against ``tests.world``'s seeded site."""

from tests.world import world

__all__ = ["world"]
