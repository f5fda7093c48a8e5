"""The monitor issue's end-to-end attack, through the real paths over HTTP: credential
stuffing against ``POST /api/v1/sessions``, the right password at last, then an export
spike through ``POST /api/v1/exports`` with the stolen session cookie. The alerts fire,
the incident forms with the right scope, automatic containment locks the account and
ends its sessions, and the attacker's next requests are refused."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx

from pacsguard.app import build_app
from pacsguard.archives.synthetic import make_study
from pacsguard.audit.reader import LogReader
from pacsguard.clock import FakeClock
from pacsguard.domain import Sensitivity
from pacsguard.monitor.incidents import IncidentState
from pacsguard.monitor.wiring import open_monitor
from tests.conftest import PASSWORD
from tests.unit.gateway.exporting import allow_exports
from tests.world import OPERATOR, World, run

ATTACKER_IP = "203.0.113.9"
SPIKE = 16  # the export rule fires on more than 15 studies in 30 minutes


def seed_exportable(world: World, n: int) -> list[str]:
    """``n`` small internal studies of four patients in alice's zone."""
    uids = []
    for i in range(n):
        study = make_study(patient_id=f"P{i % 4}", patient_name=f"Spike^{i}", accession=f"SP{i}",
                           study_date=date(2024, 5, 1), series=1, instances_per_series=1)  # fmt: skip
        assert run(world.archives["north"].store(study.instances)).ok
        world.site.catalogue.record(study.study_uid, zone="north", archive=world.archives["north"].name,
                                    patient_id=f"P{i % 4}", modality="CT", study_date=date(2024, 5, 1))  # fmt: skip
        world.site.catalogue.set_sensitivity(study.study_uid, Sensitivity.INTERNAL, by="olga")
        uids.append(study.study_uid)
    return uids


def call(world: World, app: Any, method: str, path: str, cookie: str | None = None, **kwargs: Any) -> httpx.Response:
    """A request from the attacker's address and box (with the stolen cookie, if any)."""
    headers = {"User-Agent": "stuffer/1.0", "X-Device-Id": "attacker-box"}
    if cookie:
        headers["Cookie"] = f"pacsguard_session={cookie}"
    return world.request(None, method, path, app=app, ip=ATTACKER_IP, headers=headers, **kwargs)


def test_stuffing_success_and_export_spike_over_http_are_contained(world: World) -> None:
    site, clock = world.site, world.site.clock
    assert isinstance(clock, FakeClock)
    allow_exports(world)
    site.directory.auth.set_password("alice", PASSWORD, by=OPERATOR)
    studies = seed_exportable(world, SPIKE)
    clock.advance(hours=3)  # the setup's admin alerts fall outside the live horizon
    monitor = open_monitor(None, site.engine, site.audit, site.directory, clock)
    app = build_app(site, world.archives, lambda: world.point, world.options, monitor=monitor)
    while monitor.service.step():
        pass
    before = monitor.service.store.alert_count()

    for guess in range(6):
        clock.advance(seconds=20)
        refused = call(
            world, app, "POST", "/api/v1/sessions", json={"username": "alice", "password": f"Summer-{guess}x"}
        )
        assert refused.status_code == 401
    clock.advance(seconds=20)
    signed_in = call(world, app, "POST", "/api/v1/sessions", json={"username": "alice", "password": PASSWORD})
    assert signed_in.status_code == 201
    cookie = signed_in.cookies["pacsguard_session"]
    for uid in studies:
        clock.advance(seconds=30)
        exported = call(world, app, "POST", "/api/v1/exports", cookie, json={"studies": [uid]})
        assert exported.status_code == 200, exported.text
    clock.advance(seconds=1)
    while monitor.service.step():
        pass

    store = monitor.service.store
    fired = {s.alert.rule_id for s in store.alerts()[: store.alert_count() - before]}
    assert {"auth.success-after-failures", "data.export-spike"} <= fired
    [incident] = [i for i in store.incidents() if i.subject == "actor.principal_id=alice"]
    assert incident.state is IncidentState.CONTAINED
    assert incident.scope is not None
    assert incident.scope["exported"] == sorted(studies)
    assert incident.scope["patients"] == ["P0", "P1", "P2", "P3"]
    assert incident.step("contain").by == "rule:auth.success-after-failures"

    # The stolen session is dead, and the right password no longer opens a new one.
    assert call(world, app, "GET", "/dicomweb/studies", cookie).status_code == 401
    assert call(world, app, "POST", "/api/v1/exports", cookie, json={"studies": studies[:1]}).status_code == 401
    again = call(world, app, "POST", "/api/v1/sessions", json={"username": "alice", "password": PASSWORD})
    assert again.status_code == 401
    types = [e.type for e in LogReader(site.engine).iter_events(None, None)]
    assert types.count("study.export") == SPIKE
    assert "containment.account_locked" in types
    assert "containment.sessions_revoked" in types
