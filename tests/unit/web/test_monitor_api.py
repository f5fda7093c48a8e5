"""The security officer's API over a real site: failed logins through the directory make
alerts and an incident in the live monitor; the officer reads, acknowledges, moves the
incident, orders containment; the contained user's next DICOMweb request is refused."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from pacsguard.app import build_app
from pacsguard.directory import Client, PrincipalKind
from pacsguard.domain import Actor, AuditEvent, ObjectRef, Outcome, RoleRef
from pacsguard.errors import InvalidCredentials
from pacsguard.monitor.wiring import Monitor, open_monitor
from tests.world import OPERATOR, World

PASSWORD = "Correct-horse-42"
RULE = "auth.failed-logins-account"
EVE = "actor.principal_id=eve"


@dataclass
class Desk:
    """The world with a live monitor, an officer (olga) and the app serving the officer API."""

    world: World
    monitor: Monitor
    app: Any
    tokens: dict[str, str]

    def call(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.world.request(None, method, f"/api/v1{path}", app=self.app, headers=headers, **kwargs)

    def fail_logins(self, user: str, n: int, ip: str = "198.51.100.7") -> None:
        for _ in range(n):
            self.world.site.clock.advance(seconds=20)  # type: ignore[attr-defined]
            with pytest.raises(InvalidCredentials):
                self.world.site.directory.auth.login(user, "wrong-Password-1", client=Client(ip=ip))

    def emit_failures(self, user: str, n: int, ip: str = "198.51.100.7") -> None:
        """The events ``login`` records for ``n`` wrong passwords, without the argon2 cost."""
        for _ in range(n):
            self.world.site.clock.advance(seconds=20)  # type: ignore[attr-defined]
            actor = Actor(principal_id=user, ip=ip)
            self.world.site.audit.emit(
                AuditEvent("login.failure", self.world.site.clock.now(), outcome=Outcome.FAILURE, actor=actor,
                           objects=ObjectRef(target_principal=user), detail={"reason": "bad_password"})
            )  # fmt: skip

    def catch_up(self) -> None:
        while self.monitor.service.step():
            pass


@pytest.fixture
def desk(world: World) -> Desk:
    d = world.site.directory
    tokens = {}
    for pid in ("olga", "otto"):
        d.principals.create(pid, kind=PrincipalKind.PERSON, display_name=pid.title(), zone="north", by=OPERATOR)
        d.assignments.grant(pid, RoleRef("north", "security-officer"), by=OPERATOR)
    for pid in ("olga", "otto", "alice"):
        tokens[pid] = d.tokens.issue(pid, name="api", scopes=["api"], by=OPERATOR).secret
    for pid in ("eve", "bob"):
        d.auth.set_password(pid, PASSWORD, by=OPERATOR)
    site = world.site
    monitor = open_monitor(None, site.engine, site.audit, d, site.clock)
    app = build_app(site, world.archives, lambda: world.point, world.options, monitor=monitor)
    return Desk(world, monitor, app, tokens)


@pytest.fixture
def really_attacked(desk: Desk) -> Desk:
    """Nine wrong passwords for eve through the directory's login: the failed-logins rule
    fires, an incident opens."""
    desk.fail_logins("eve", 9)
    desk.catch_up()
    return desk


@pytest.fixture
def attacked(desk: Desk) -> Desk:
    """The same nine ``login.failure`` events through the audit log's ``emit`` seam (the
    argon2 checks cost a second per test)."""
    desk.emit_failures("eve", 9)
    desk.catch_up()
    return desk


def only(items: list[dict[str, Any]], **wanted: Any) -> dict[str, Any]:
    [found] = [i for i in items if all(i[k] == v for k, v in wanted.items())]
    return found


def test_an_officer_lists_alerts_and_the_read_is_audited(really_attacked: Desk) -> None:
    attacked = really_attacked
    response = attacked.call("olga", "GET", "/alerts")
    assert response.status_code == 200, response.text
    body = response.json()
    alert = only(body["items"], rule_id="auth.failed-logins-account")
    assert alert["subject_fields"] == {"actor.principal_id": "eve"}
    assert alert["state"] == "open"
    assert alert["severity"] == "high"
    assert len(alert["evidence"]) == 9
    assert alert["first_seq"] == alert["evidence"][0] < alert["trigger_seq"] == alert["evidence"][-1]
    assert alert["time_to_alert_s"] == 160.0  # nine failures 20 s apart
    assert alert["incident_id"] is not None
    used = attacked.world.events("audit.log.used")[-1]
    assert used.actor.principal_id == "olga"
    assert used.detail["api"] == "alerts"


def test_a_non_officer_is_refused_and_the_refusal_audited(attacked: Desk) -> None:
    for method, path in (("GET", "/alerts"), ("GET", "/incidents"), ("GET", "/containment")):
        response = attacked.call("alice", method, path)
        assert response.status_code == 403, path
        assert "security-officer" in response.json()["error"]
    refused = attacked.world.events("access.denied")[-3:]
    assert [e.actor.principal_id for e in refused] == ["alice"] * 3
    assert [e.detail["api"] for e in refused] == ["/api/v1/alerts", "/api/v1/incidents", "/api/v1/containment"]
    assert not [e for e in attacked.world.events("audit.log.used") if e.actor.principal_id == "alice"]


def test_a_non_officer_cannot_order_containment(attacked: Desk) -> None:
    order = {"action": "lock_account", "target": "bob", "reason": "looks odd"}
    assert attacked.call("alice", "POST", "/containment", json=order).status_code == 403
    assert attacked.world.get("bob", "/dicomweb/studies").status_code == 200
    assert attacked.world.events("containment.account_locked") == []


def test_one_alert_carries_its_evidence_events(attacked: Desk) -> None:
    [alert] = attacked.call("olga", "GET", f"/alerts?rule={RULE}").json()["items"]
    response = attacked.call("olga", "GET", f"/alerts/{alert['id']}")
    assert response.status_code == 200
    events = response.json()["evidence_events"]
    assert [e["seq"] for e in events] == alert["evidence"]
    assert {e["type"] for e in events} == {"login.failure"}
    assert {e["actor"]["ip"] for e in events} == {"198.51.100.7"}
    assert attacked.call("olga", "GET", "/alerts/alr-0000000000000000").status_code == 404


def test_acknowledging_is_recorded_once_and_the_first_stands(attacked: Desk) -> None:
    [alert] = attacked.call("olga", "GET", f"/alerts?rule={RULE}").json()["items"]
    first = attacked.call("olga", "POST", f"/alerts/{alert['id']}/acknowledge")
    assert first.status_code == 200
    assert (first.json()["state"], first.json()["acknowledged_by"]) == ("acknowledged", "olga")
    again = attacked.call("otto", "POST", f"/alerts/{alert['id']}/acknowledge")
    assert again.json()["acknowledged_by"] == "olga"
    updates = [e for e in attacked.world.events("incident.updated") if e.detail.get("alert") == alert["id"]]
    assert [e.actor.principal_id for e in updates] == ["olga"]
    assert attacked.call("olga", "GET", f"/alerts?state=open&rule={RULE}").json()["items"] == []
    assert len(attacked.call("olga", "GET", "/alerts?state=acknowledged").json()["items"]) == 1


def test_filters_by_subject_severity_time_and_bad_input(attacked: Desk) -> None:
    assert len(attacked.call("olga", "GET", "/alerts?subject=eve").json()["items"]) == 1
    assert attacked.call("olga", "GET", "/alerts?subject=bob").json()["items"] == []
    assert attacked.call("olga", "GET", "/alerts?subject=actor.principal_id%3Deve").json()["items"] != []
    assert attacked.call("olga", "GET", "/alerts?severity=critical").json()["items"] == []
    assert attacked.call("olga", "GET", "/alerts?until=2026-11-23T10:00:00Z").json()["items"] == []
    assert attacked.call("olga", "GET", "/alerts?since=2026-11-23T10:00:00Z").json()["items"] != []
    assert attacked.call("olga", "GET", "/alerts?state=sleeping").status_code == 400
    assert attacked.call("olga", "GET", "/alerts?after=not-a-cursor").status_code == 400
    assert attacked.call("olga", "GET", "/alerts?severity=huge").status_code == 400


def test_paging_is_stable_while_new_alerts_arrive(attacked: Desk) -> None:
    attacked.emit_failures("bob", 9)
    attacked.catch_up()
    page1 = attacked.call("olga", "GET", f"/alerts?limit=1&rule={RULE}").json()
    assert [a["subject_fields"]["actor.principal_id"] for a in page1["items"]] == ["bob"]
    attacked.emit_failures("alice", 9)  # a newer alert between the pages
    attacked.catch_up()
    page2 = attacked.call("olga", "GET", f"/alerts?limit=1&rule={RULE}&after={page1['next']}").json()
    assert [a["subject_fields"]["actor.principal_id"] for a in page2["items"]] == ["eve"]
    page3 = attacked.call("olga", "GET", f"/alerts?limit=1&rule={RULE}&after={page2['next']}").json()
    assert page3 == {"items": [], "next": None}
    newest = attacked.call("olga", "GET", f"/alerts?limit=1&rule={RULE}").json()["items"]
    assert newest[0]["subject_fields"]["actor.principal_id"] == "alice"


def _incident(desk: Desk) -> dict[str, Any]:
    [incident] = [i for i in desk.call("olga", "GET", "/incidents").json() if i["subject"] == EVE]
    response = desk.call("olga", "GET", f"/incidents/{incident['id']}")
    assert response.status_code == 200, response.text
    detail: dict[str, Any] = response.json()
    return detail


def test_an_incident_shows_alerts_scope_checklist_and_times(attacked: Desk) -> None:
    incident = _incident(attacked)
    assert incident["subject"] == EVE
    assert incident["state"] == "open"
    assert [a["rule_id"] for a in incident["alerts"]] == ["auth.failed-logins-account"]
    steps = {s["name"]: s for s in incident["checklist"]}
    assert list(steps) == ["contain", "preserve", "scope", "reset"]
    assert steps["preserve"]["done_at"] is not None  # the monitor pinned a signed head
    assert incident["head"]["size"] > incident["evidence_to"]
    assert incident["scope"]["principal"] == "eve"
    assert incident["time_to_alert_s"] == 160.0
    assert incident["time_to_contain_s"] is None
    assert attacked.call("olga", "GET", "/incidents/inc-nothing").status_code == 404
    assert attacked.world.events("audit.log.used")[-1].detail["api"] == "incidents"


def test_incident_states_move_forward_only(attacked: Desk) -> None:
    iid = _incident(attacked)["id"]
    path = f"/incidents/{iid}/state"
    assert attacked.call("olga", "POST", path, json={"state": "resolved"}).status_code == 409
    taken = attacked.call("olga", "POST", path, json={"state": "acknowledged"})
    assert taken.status_code == 200
    assert (taken.json()["state"], taken.json()["owner"]) == ("acknowledged", "olga")
    assert attacked.call("olga", "POST", path, json={"state": "open"}).status_code == 409
    attacked.world.site.clock.advance(minutes=3)  # type: ignore[attr-defined]
    contained = attacked.call("olga", "POST", path, json={"state": "contained", "note": "account locked"}).json()
    assert contained["state"] == "contained"
    assert contained["time_to_contain_s"] == 180.0
    steps = {s["name"]: s for s in contained["checklist"]}
    assert (steps["contain"]["by"], steps["contain"]["note"]) == ("olga", "account locked")
    resolved = attacked.call("olga", "POST", path, json={"state": "resolved", "note": "password reset"}).json()
    assert resolved["state"] == "resolved"
    assert attacked.call("olga", "POST", path, json={"state": "resolved"}).status_code == 409
    assert attacked.call("olga", "POST", path, json={"state": "closed"}).status_code == 400
    changes = [e.detail["to"] for e in attacked.world.events("incident.updated") if e.detail.get("change") == "state"]
    assert changes == ["acknowledged", "contained", "resolved"]


def test_owner_must_be_an_officer(attacked: Desk) -> None:
    iid = _incident(attacked)["id"]
    assert attacked.call("olga", "POST", f"/incidents/{iid}/owner", json={"owner": "alice"}).status_code == 400
    given = attacked.call("olga", "POST", f"/incidents/{iid}/owner", json={"owner": "otto"})
    assert given.status_code == 200
    assert given.json()["owner"] == "otto"
    [event] = [e for e in attacked.world.events("incident.updated") if e.detail.get("change") == "owner"]
    assert (event.actor.principal_id, event.detail["to"]) == ("olga", "otto")


def test_checklist_steps_are_ticked_once_with_a_note(attacked: Desk) -> None:
    iid = _incident(attacked)["id"]
    done = attacked.call("olga", "POST", f"/incidents/{iid}/checklist/reset", json={"note": "new password issued"})
    assert done.status_code == 200
    step = only(done.json()["checklist"], name="reset")
    assert (step["by"], step["note"]) == ("olga", "new password issued")
    assert attacked.call("otto", "POST", f"/incidents/{iid}/checklist/reset", json={}).status_code == 409
    assert attacked.call("olga", "POST", f"/incidents/{iid}/checklist/pray", json={}).status_code == 404


def test_containment_through_the_api_locks_the_user_out_of_dicomweb(really_attacked: Desk) -> None:
    attacked = really_attacked
    world = attacked.world
    assert world.get("alice", "/dicomweb/studies").status_code == 200
    iid = _incident(attacked)["id"]
    order = {"action": "lock_account", "target": "alice", "reason": "token seen on a paste site", "incident": iid}
    response = attacked.call("olga", "POST", "/containment", json=order)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["changed"] is True
    assert (result["containment"]["ordered_by"], result["containment"]["target"]) == ("olga", "alice")
    assert world.get("alice", "/dicomweb/studies").status_code == 401
    [locked] = world.events("containment.account_locked")
    assert (locked.actor.principal_id, locked.detail["ordered_by"]) == ("olga", "olga")
    assert attacked.call("olga", "POST", "/containment", json=order).json()["changed"] is False
    assert only(_incident(attacked)["checklist"], name="contain")["by"] == "olga"
    [active] = attacked.call("olga", "GET", "/containment").json()
    assert active["id"] == result["containment"]["id"]
    undone = attacked.call("otto", "POST", f"/containment/{active['id']}/undo")
    assert undone.json() == {"changed": True, "action": "lock_account", "target": "alice"}
    assert world.get("alice", "/dicomweb/studies").status_code == 200
    assert world.events("containment.undone")[-1].actor.principal_id == "otto"
    assert attacked.call("olga", "POST", f"/containment/{active['id']}/undo").status_code == 404


def test_containment_orders_are_checked(attacked: Desk) -> None:
    bad = [
        ({"action": "nuke", "target": "alice", "reason": "why not"}, 400),
        ({"action": "lock_account", "target": "nobody", "reason": "who is it"}, 400),
        ({"action": "revoke_sessions", "target": "alice", "reason": "x"}, 400),  # reason too short
        ({"action": "revoke_sessions", "target": "alice", "reason": "leak", "until": "2030-01-01T00:00:00Z"}, 400),
        ({"action": "block_ip", "target": "198.51.100.7", "reason": "old", "until": "2020-01-01T00:00:00Z"}, 400),
        ({"action": "lock_account", "target": "alice", "reason": "leak", "incident": "inc-nothing"}, 404),
    ]
    for order, status in bad:
        assert attacked.call("olga", "POST", "/containment", json=order).status_code == status, order
    assert attacked.call("olga", "GET", "/containment").json() == []


def test_block_ip_until_a_time(attacked: Desk) -> None:
    order = {"action": "block_ip", "target": "198.51.100.7", "reason": "stuffing", "until": "2026-11-24T10:00:00Z"}
    result = attacked.call("olga", "POST", "/containment", json=order).json()
    assert result["containment"]["action"] == "block_ip"
    blocks = attacked.monitor.containment.blocks
    assert blocks.is_blocked("198.51.100.7", attacked.world.site.clock.now())
    playbooks = attacked.call("olga", "GET", "/containment/playbooks").json()
    assert {p["name"] for p in playbooks} >= {"lock_account", "block_ip", "expire_shares"}


def test_without_a_monitor_the_routes_are_not_mounted(desk: Desk) -> None:
    plain = desk.world.request(
        None, "GET", "/api/v1/alerts", headers={"Authorization": f"Bearer {desk.tokens['olga']}"}
    )
    assert plain.status_code == 404
    paths = desk.world.request(None, "GET", "/api/openapi.json", app=desk.app).json()["paths"]
    assert {"/v1/alerts", "/v1/alerts/{alert_id}", "/v1/incidents/{incident_id}/state", "/v1/containment"} <= set(paths)
