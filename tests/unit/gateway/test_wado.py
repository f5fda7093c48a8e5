"""WADO-RS through the gateway: permitted studies byte for byte, denied ones exactly like
studies that do not exist, and the read event durable before the data."""

from __future__ import annotations

import pytest

from pacsguard.archives.parts import split_related
from tests.world import World, run

ACCEPT = {"Accept": 'multipart/related; type="application/dicom"'}


def _instances(response_content: bytes, content_type: str) -> list[bytes]:
    return [payload for _, payload in split_related(response_content, content_type)]


def test_a_permitted_study_comes_back_whole(world: World) -> None:
    n1 = world.studies["N1"]
    response = world.get("alice", f"/dicomweb/studies/{n1.study_uid}", headers=ACCEPT)
    assert response.status_code == 200
    assert sorted(_instances(response.content, response.headers["content-type"])) == sorted(n1.instances)
    (event,) = world.events("study.read")
    assert event.objects.study_uid == n1.study_uid
    assert event.objects.patient_id == "N-100"
    assert event.objects.zone == "north"
    assert event.decision is not None
    assert event.decision.effect == "permit"
    assert event.decision.rule_ids == ("north-radiologists-read",)


def test_a_partner_zone_study_is_read_through_the_agreement(world: World) -> None:
    s1 = world.studies["S1"]
    response = world.get("alice", f"/dicomweb/studies/{s1.study_uid}/series/{s1.series_uids[1]}")
    assert response.status_code == 200
    assert sorted(_instances(response.content, response.headers["content-type"])) == sorted(s1.instances[2:])
    (event,) = world.events("study.read")
    assert event.decision is not None
    assert event.decision.agreement == "north-south-imaging"


def test_one_instance_metadata_frames_and_bulk_data(world: World) -> None:
    n1 = world.studies["N1"]
    base = f"/dicomweb/studies/{n1.study_uid}/series/{n1.series_uids[0]}/instances/{n1.sop_uids[0]}"
    one = world.get("alice", base)
    assert _instances(one.content, one.headers["content-type"]) == [n1.instances[0]]
    metadata = world.get("alice", base + "/metadata")
    assert metadata.headers["content-type"].startswith("application/dicom+json")
    (item,) = metadata.json()
    assert item["00080018"]["Value"] == [n1.sop_uids[0]]
    frames = world.get("alice", base + "/frames/1")
    (frame,) = _instances(frames.content, frames.headers["content-type"])
    assert len(frame) == 16 * 16 * 2
    bulk = world.get("alice", base + "/bulk/7FE00010")
    assert _instances(bulk.content, bulk.headers["content-type"]) == [frame]
    assert world.get("alice", base + "/frames/2").status_code == 404
    assert world.get("alice", base + "/frames/x").status_code == 400
    study_metadata = world.get("alice", f"/dicomweb/studies/{n1.study_uid}/metadata").json()
    assert len(study_metadata) == 4
    reads = [e.detail.get("kind", e.outcome.value) for e in world.events("study.read")]
    assert reads == ["retrieve", "metadata", "frames", "bulk", "failure", "metadata"]


def _denied_paths(world: World) -> list[str]:
    n2 = world.studies["N2"]
    s, r, i = n2.study_uid, n2.series_uids[0], n2.sop_uids[0]
    return [
        f"/dicomweb/studies/{s}",
        f"/dicomweb/studies/{s}/metadata",
        f"/dicomweb/studies/{s}/series/{r}",
        f"/dicomweb/studies/{s}/series/{r}/metadata",
        f"/dicomweb/studies/{s}/series/{r}/instances/{i}",
        f"/dicomweb/studies/{s}/series/{r}/instances/{i}/metadata",
        f"/dicomweb/studies/{s}/series/{r}/instances/{i}/frames/1",
        f"/dicomweb/studies/{s}/series/{r}/instances/{i}/bulk/7FE00010",
    ]


def test_denied_is_exactly_like_unknown_and_audited(world: World) -> None:
    n2 = world.studies["N2"]
    unknown = "1.2.826.0.1.3680043.99.1"
    for path in _denied_paths(world):
        denied = world.get("alice", path)
        missing = world.get("alice", path.replace(n2.study_uid, unknown))
        assert denied.status_code == missing.status_code == 404
        assert denied.content == missing.content
        assert denied.headers == missing.headers
    events = world.events("access.denied")
    assert len(events) == 2 * len(_denied_paths(world))
    assert {e.detail["reason"] for e in events} == {"denied", "unknown"}
    assert world.events("study.read") == []


@pytest.mark.parametrize(
    "form",
    [
        "/dicomweb/studies/{s}/",
        "/dicomweb//studies/{s}",
        "/dicomweb/studies//{s}",
        "/dicomweb/studies/{s}//metadata",
        "/dicomweb/studies/{enc}",
        "/dicomweb/studies/{enc}/metadata",
        "/dicomweb/studies/x/%2E%2E/{s}",
        "/dicomweb/studies/{s}/series/%2E%2E/metadata",
        "/dicomweb/STUDIES/{s}",
        "/dicomweb/Studies/{s}/metadata",
        "/DICOMWEB/studies/{s}",
        "/dicomweb/studies/{s}/SERIES",
        "/dicomweb/studies/{s}/series/{r}/instances/{i}/../../../metadata",
        "/dicomweb/studies?StudyInstanceUID={s}",
        "/dicomweb/series?StudyInstanceUID={s}&includefield=all",
        "/dicomweb/instances?StudyInstanceUID={s}&includefield=all",
        "/dicomweb/instances?SOPInstanceUID={i}",
        "/dicomweb/series?SeriesInstanceUID={r}",
    ],
)
def test_url_variants_never_return_a_denied_study(world: World, form: str) -> None:
    n2 = world.studies["N2"]
    s, r, i = n2.study_uid, n2.series_uids[0], n2.sop_uids[0]
    path = form.format(s=s, r=r, i=i, enc=s.replace(".", "%2E"))
    response = world.get("alice", path)
    assert response.status_code in (200, 400, 404)
    assert response.content in (b"[]", b'{"error":"not found"}') or response.status_code == 400
    for secret in (s, r, i, "N-101", "Nord^Vip"):
        assert secret not in response.text


def test_a_bad_uid_is_a_400_and_audited(world: World) -> None:
    response = world.get("alice", "/dicomweb/studies/1.2.03/metadata")
    assert response.status_code == 400
    assert "StudyInstanceUID" in response.json()["error"]
    (event,) = world.events("study.read")
    assert event.outcome.value == "failure"


def test_break_glass_opens_a_study_with_a_reason_and_records_the_grant(world: World) -> None:
    n1 = world.studies["N1"]
    path = f"/dicomweb/studies/{n1.study_uid}/metadata"
    assert world.get("eve", path).status_code == 404
    short = world.get("eve", path, headers={"X-Break-Glass-Reason": "urgent"})
    assert short.status_code == 404
    (refused,) = world.events("break_glass.refused")
    assert refused.detail["code"] == "reason-required"
    reason = "unconscious patient in the emergency room"
    opened = world.get("eve", path, headers={"X-Break-Glass-Reason": reason, "X-Purpose": "emergency"})
    assert opened.status_code == 200
    (granted,) = world.events("break_glass.granted")
    assert granted.detail["reason"] == reason
    (read,) = world.events("study.read")
    assert read.decision is not None
    assert read.decision.break_glass_reason == reason
    assert read.detail["break_glass"] == granted.detail["grant"]
    types = [e.type for e in world.events() if e.type in ("break_glass.granted", "study.read")]
    assert types == ["break_glass.granted", "study.read"]


def test_a_read_waits_for_a_durable_event_and_an_audit_failure_sends_nothing(world: World) -> None:
    n1 = world.studies["N1"]
    world.site.audit.close()
    response = world.get("alice", f"/dicomweb/studies/{n1.study_uid}")
    assert response.status_code == 503
    assert b"DICM" not in response.content
    assert "audit" in response.json()["error"]
    assert world.get("alice", "/dicomweb/studies").status_code == 503


def test_delete_needs_the_right_and_is_audited_first(world: World) -> None:
    n1, s1 = world.studies["N1"], world.studies["S1"]
    assert world.request("bob", "DELETE", f"/dicomweb/studies/{n1.study_uid}").status_code == 404
    assert world.request("alice", "DELETE", f"/dicomweb/studies/{s1.study_uid}").status_code == 404
    assert world.request("alice", "DELETE", f"/dicomweb/studies/{n1.study_uid}").status_code == 204
    (event,) = world.events("study.delete")
    assert event.objects.study_uid == n1.study_uid
    assert [e.detail["action"] for e in world.events("access.denied")] == ["delete", "delete"]
    from pacsguard.archives import QidoQuery

    assert run(world.archives["north"].search_studies(QidoQuery(study_uids=(n1.study_uid,)))) == []
