"""The receiver's counters on ``/healthz`` and ``/metrics`` (Prometheus text)."""

from __future__ import annotations

from typing import Any

from pacsguard.app import build_app
from pacsguard.web.metrics import CONTENT_TYPE
from tests.world import World, world

__all__ = ["world"]  # the seeded site of tests.world, as a fixture here

COUNTERS = {"received": 7, "durable": 5, "quarantined": 2, "udp_dropped": 1, "queue_depth": 3}


def _app(world: World) -> Any:
    return build_app(world.site, world.archives, lambda: world.point, ingest_stats=lambda: COUNTERS)


def test_healthz_shows_the_receiver_counters(world: World) -> None:
    response = world.request(None, "GET", "/healthz", app=_app(world))
    assert response.status_code == 200
    assert response.json()["ingest"] == COUNTERS


def test_metrics_in_prometheus_text(world: World) -> None:
    response = world.request(None, "GET", "/metrics", app=_app(world))
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE
    lines = response.text.splitlines()
    assert "pacsguard_ingest_udp_dropped_total 1" in lines
    assert "# TYPE pacsguard_ingest_queue_depth gauge" in lines
    assert "pacsguard_ingest_queue_depth 3" in lines
    assert "pacsguard_audit_healthy 1" in lines
