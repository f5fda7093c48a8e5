"""Before authentication (blocked addresses, requests without credentials), HEAD, the
deletion's catalogue and counts, and an archive that is down during a retrieve."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from pacsguard.archives import DicomWebArchive, QidoQuery
from pacsguard.clock import FakeClock
from pacsguard.monitor.containment import IpBlocks
from tests.postgres import free_port
from tests.world import CLIENT_IP, OPERATOR, World, run, study_uids

ACCEPT = {"Accept": 'multipart/related; type="application/dicom"'}


def _clock(world: World) -> FakeClock:
    clock = world.site.clock
    assert isinstance(clock, FakeClock)
    return clock


def _block(world: World, ip: str = CLIENT_IP) -> None:
    now = world.site.clock.now()
    assert IpBlocks(world.site.engine).block(ip, until=now + timedelta(hours=1), reason="test", by="olga", now=now)


# --- requests without credentials ---------------------------------------------------------
def test_requests_without_credentials_are_audited_once_a_minute_per_address(world: World) -> None:
    app = world.app
    for _ in range(3):
        assert world.get(None, "/dicomweb/studies", app=app).status_code == 401
    (first,) = world.events("access.denied")
    assert first.detail == {"reason": "no_credentials", "path": "/dicomweb/studies", "count": 1}
    assert first.actor.ip == CLIENT_IP
    assert first.actor.principal_id is None
    assert first.outcome.value == "denied"
    _clock(world).advance(seconds=61)
    assert world.get(None, "/dicomweb/studies/1.2.3", app=app).status_code == 401
    second = world.events("access.denied")[-1]
    assert second.detail["count"] == 3  # the two left unreported, and this one
    assert second.detail["path"] == "/dicomweb/studies/1.2.3"


# --- blocked addresses ----------------------------------------------------------------------
def test_a_blocked_address_is_refused_before_authentication_and_audited(world: World) -> None:
    _block(world)
    response = world.get("alice", "/dicomweb/studies")
    assert response.status_code == 403
    assert "blocked" in response.json()["error"]
    assert world.studies["N1"].study_uid not in response.text
    (event,) = world.events("access.denied")
    assert (event.detail["reason"], event.actor.ip) == ("ip_blocked", CLIENT_IP)
    assert world.events("study.query") == []
    assert world.get(None, f"/dicomweb/studies/{world.studies['N1'].study_uid}").status_code == 403


def test_a_blocked_address_is_refused_by_the_json_api_too(world: World) -> None:
    token = world.site.directory.tokens.issue("alice", name="api", scopes=["api"], by=OPERATOR).secret
    headers = {"Authorization": f"Bearer {token}"}
    assert world.get(None, "/api/v1/me", headers=headers).status_code == 200
    _block(world)
    response = world.get(None, "/api/v1/me", headers=headers)
    assert response.status_code == 403
    assert "blocked" in response.json()["error"]
    assert world.events("access.denied")[-1].detail["reason"] == "ip_blocked"


def test_other_addresses_pass_and_a_lifted_block_ends_within_seconds(world: World) -> None:
    _block(world, "198.51.100.7")
    app = world.app
    assert world.get("alice", "/dicomweb/studies", app=app).status_code == 200
    _block(world)
    assert world.get("alice", "/dicomweb/studies", app=app).status_code == 200  # cached for 5 s
    _clock(world).advance(seconds=6)
    assert world.get("alice", "/dicomweb/studies", app=app).status_code == 403
    assert IpBlocks(world.site.engine).unblock(CLIENT_IP)
    _clock(world).advance(seconds=6)
    assert world.get("alice", "/dicomweb/studies", app=app).status_code == 200


# --- HEAD ---------------------------------------------------------------------------------------
def test_head_is_decided_like_get_and_sends_no_body(world: World) -> None:
    n1, n2 = world.studies["N1"], world.studies["N2"]
    base = f"/dicomweb/studies/{n1.study_uid}/series/{n1.series_uids[0]}/instances/{n1.sop_uids[0]}"
    for path in (f"/dicomweb/studies/{n1.study_uid}", base, base + "/metadata", "/dicomweb/studies"):
        got, head = world.get("alice", path, headers=ACCEPT), world.request("alice", "HEAD", path, headers=ACCEPT)
        assert (head.status_code, head.content) == (200, b""), path
        assert head.headers["content-type"].split(";")[0] == got.headers["content-type"].split(";")[0]
    study_head = world.request("alice", "HEAD", f"/dicomweb/studies/{n1.study_uid}", headers=ACCEPT)
    assert "content-length" not in study_head.headers  # streamed: length unknown, not 0
    metadata = world.request("alice", "HEAD", base + "/metadata")
    assert metadata.headers["content-length"] == world.get("alice", base + "/metadata").headers["content-length"]
    heads = [e for e in world.events("study.read") if e.detail.get("method") == "HEAD"]
    assert [e.detail["kind"] for e in heads] == ["retrieve", "retrieve", "metadata", "retrieve", "metadata"]
    assert all(e.objects.bytes is None for e in heads)
    denied = world.request("alice", "HEAD", f"/dicomweb/studies/{n2.study_uid}")
    unknown = world.request("alice", "HEAD", "/dicomweb/studies/1.2.826.0.1.3680043.99.1")
    assert (denied.status_code, denied.content) == (unknown.status_code, unknown.content) == (404, b"")
    assert denied.headers == unknown.headers
    assert world.events("access.denied")[-2].detail["reason"] == "denied"


def test_head_of_a_missing_series_in_a_permitted_study_is_404(world: World) -> None:
    n1 = world.studies["N1"]
    response = world.request("alice", "HEAD", f"/dicomweb/studies/{n1.study_uid}/series/1.2.3.4")
    assert (response.status_code, response.content) == (404, b"")
    assert world.request(None, "HEAD", "/dicomweb/studies").status_code == 401


# --- DELETE -------------------------------------------------------------------------------------
def test_delete_counts_what_it_removes_and_forgets_the_study(world: World) -> None:
    n1 = world.studies["N1"]
    assert world.request("alice", "DELETE", f"/dicomweb/studies/{n1.study_uid}").status_code == 204
    (event,) = world.events("study.delete")
    assert (event.objects.count, event.detail["series"], event.detail["instances"]) == (4, 2, 4)
    assert event.objects.patient_id == "N-100"
    assert world.site.catalogue.get(n1.study_uid) is None
    assert run(world.archives["north"].search_studies(QidoQuery(study_uids=(n1.study_uid,)))) == []
    again = world.request("alice", "DELETE", f"/dicomweb/studies/{n1.study_uid}")
    assert again.status_code == 404
    assert world.events("access.denied")[-1].detail["reason"] == "unknown"
    assert n1.study_uid not in world.get("alice", "/dicomweb/studies").text


# --- an archive that is down ---------------------------------------------------------------------
def _down(name: str) -> Any:
    return DicomWebArchive(f"http://127.0.0.1:{free_port()}/dicom-web", name=name, timeout=5)


@pytest.mark.parametrize("suffix", ["", "/metadata"])
def test_a_retrieve_from_an_archive_that_is_down_is_a_clear_502(world: World, suffix: str) -> None:
    app = world.app_with({"north": _down("north-pacs"), "south": world.archives["south"]})
    response = world.get("alice", f"/dicomweb/studies/{world.studies['N1'].study_uid}{suffix}", app=app)
    assert response.status_code == 502
    assert "cannot be reached" in response.json()["error"]
    assert world.events("study.read") == []


def test_a_search_with_one_zone_down_returns_the_others_with_a_warning(world: World) -> None:
    app = world.app_with({"north": _down("north-pacs"), "south": world.archives["south"]})
    response = world.get("alice", "/dicomweb/studies", app=app)
    assert study_uids(response) == [world.studies["S1"].study_uid]
    assert "north-pacs" in response.headers["warning"]
    deep = world.get("alice", "/dicomweb/studies?limit=1&offset=0", app=app)
    assert study_uids(deep) == [world.studies["S1"].study_uid]
    assert "north-pacs" in deep.headers["warning"]
