"""``POST /api/v1/exports``: decided before anything is fetched, one durable
``study.export`` per study before its bytes, denied and unknown alike, a streamed ZIP
byte-identical to the archive, progress for its owner only, fail closed."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from typing import Any

import pytest

from pacsguard.archives import Archive, CatalogueEntry
from pacsguard.archives.synthetic import make_study
from pacsguard.errors import NotFound
from pacsguard.gateway import ExportProgress, zip_studies
from pacsguard.gateway.exports import ExportRegistry
from pacsguard.monitor import Alert, Engine, load_rules
from tests.unit.gateway.exporting import (
    FailingAudit,
    Streamed,
    allow_exports,
    api_headers,
    app_with_audit,
    broken_copy,
    gateway_of,
    post_export,
    stream_to,
    unzip,
)
from tests.world import World, run

UNKNOWN = "1.2.826.0.1.3680043.8.498.999999999"


@pytest.fixture
def exporting(world: World) -> World:
    allow_exports(world)
    return world


def test_the_zip_holds_every_instance_byte_for_byte_under_patient_study_series(exporting: World) -> None:
    n1 = exporting.studies["N1"]
    response = post_export(exporting, "alice", [n1.study_uid])
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"].startswith('attachment; filename="pacsguard-export-')
    files, manifest = unzip(response)
    expected = {}
    for data, sop in zip(n1.instances, n1.sop_uids, strict=True):
        series = n1.series_uids[n1.sop_uids.index(sop) // 2]
        expected[f"N-100/{n1.study_uid}/{series}/{sop}.dcm"] = data
    assert files == expected
    retrieved = run(exporting.archives["north"].retrieve_study(n1.study_uid))
    assert run(retrieved.read()).count(b"DICM") == len(files)
    assert manifest["export_id"] == response.headers["x-export-id"]
    assert manifest["by"] == "alice"
    assert manifest["not_exported"] == []
    (study,) = manifest["studies"]
    assert study == {"study_uid": n1.study_uid, "patient_id": "N-100", "zone": "north",
                     "folder": f"N-100/{n1.study_uid}", "instances": 4, "bytes": n1.size}  # fmt: skip


def test_each_study_is_one_durable_study_export_event_with_counts_bytes_and_decision(exporting: World) -> None:
    n1 = exporting.studies["N1"]
    response = post_export(exporting, "alice", [n1.study_uid, n1.study_uid], purpose="research")
    assert response.status_code == 200
    (event,) = exporting.events("study.export")
    assert event.actor.principal_id == "alice"
    assert event.actor.roles == ("north/radiologist",)
    assert (event.objects.study_uid, event.objects.patient_id, event.objects.zone) == (n1.study_uid, "N-100", "north")
    assert (event.objects.count, event.objects.bytes) == (4, n1.size)
    assert event.decision is not None
    assert event.decision.effect == "permit"
    assert event.decision.rule_ids == ("north-radiologists-export-by-token",)
    assert event.detail["export"] == response.headers["x-export-id"]
    assert event.detail["purpose"] == "research"


def test_denied_and_unknown_studies_are_audited_alike_and_listed_without_a_reason(exporting: World) -> None:
    n1, n2, s1 = (exporting.studies[k] for k in ("N1", "N2", "S1"))
    asked = [n2.study_uid, n1.study_uid, UNKNOWN, s1.study_uid]
    files, manifest = unzip(post_export(exporting, "alice", asked))
    assert {name.split("/")[1] for name in files} == {n1.study_uid}
    assert manifest["not_exported"] == [n2.study_uid, UNKNOWN, s1.study_uid]
    assert [s["study_uid"] for s in manifest["studies"]] == [n1.study_uid]
    denied = exporting.events("access.denied")
    assert [e.objects.study_uid for e in denied] == [n2.study_uid, UNKNOWN, s1.study_uid]
    assert {e.detail["action"] for e in denied} == {"export"}
    assert [e.detail["reason"] for e in denied] == ["denied", "unknown", "denied"]
    assert [e.objects.study_uid for e in exporting.events("study.export")] == [n1.study_uid]


def test_when_nothing_may_be_exported_the_answer_is_the_404_of_an_unknown_study(exporting: World) -> None:
    secret = post_export(exporting, "alice", [exporting.studies["N2"].study_uid])
    unknown = post_export(exporting, "alice", [UNKNOWN])
    assert secret.status_code == unknown.status_code == 404
    assert secret.content == unknown.content == b'{"error":"not found"}'
    assert sorted(secret.headers.keys()) == sorted(unknown.headers.keys())
    assert len(exporting.events("access.denied")) == 2
    assert exporting.events("study.export") == []


def test_zip_studies_hands_each_study_to_on_study_before_any_of_its_bytes(exporting: World) -> None:
    n1, s1 = exporting.studies["N1"], exporting.studies["S1"]
    found = exporting.site.catalogue.get_many([n1.study_uid, s1.study_uid])
    entries = [found[n1.study_uid], found[s1.study_uid]]
    received = bytearray()
    calls: list[tuple[str, int, int, bool]] = []
    progress = ExportProgress.start(exporting.site.clock.now(), len(entries), "share-recipient")
    seen: list[tuple[str, int, int]] = []

    async def on_study(entry: CatalogueEntry, instances: int, size: int) -> None:
        calls.append((entry.study_uid, instances, size, entry.study_uid.encode() in received))
        seen.append((progress.state, progress.studies_done, progress.instances_done))

    async def download() -> None:
        stream = zip_studies(gateway_of(exporting), entries, progress=progress, on_study=on_study,
                             manifest={"share": "s-1"})  # fmt: skip
        async for chunk in stream:
            received.extend(chunk)

    run(download())
    assert calls == [(n1.study_uid, 4, n1.size, False), (s1.study_uid, 4, s1.size, False)]
    assert seen == [("running", 0, 0), ("running", 1, 4)]
    assert (progress.state, progress.studies_done, progress.instances_done) == ("done", 2, 8)
    assert progress.bytes_done == n1.size + s1.size
    with zipfile.ZipFile(io.BytesIO(bytes(received))) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        assert sum(name.startswith(f"S-200/{s1.study_uid}/") for name in archive.namelist()) == 4
    assert manifest["share"] == "s-1"
    assert [s["instances"] for s in manifest["studies"]] == [4, 4]


def test_the_progress_registry_is_bounded_and_forgets_finished_exports_first() -> None:
    now = datetime(2026, 11, 23, 10, tzinfo=UTC)
    registry = ExportRegistry(capacity=2)
    first, second, third = (ExportProgress.start(now, 1, "alice") for _ in range(3))
    registry.add(first)
    registry.add(second)
    second.finish(now)
    registry.add(third)
    assert registry.get(first.id, "alice") is first
    with pytest.raises(NotFound):
        registry.get(second.id, "alice")
    with pytest.raises(NotFound):
        registry.get(third.id, "bob")
    registry.add(ExportProgress.start(now, 1, "alice"))  # all running: the oldest goes
    with pytest.raises(NotFound):
        registry.get(first.id, "alice")


def test_names_in_the_zip_cannot_climb_out_of_the_folder(exporting: World) -> None:
    uid = _store(exporting, "north", "../../etc/passwd")
    files, _ = unzip(post_export(exporting, "alice", [uid]))
    (name,) = files
    assert name.startswith(f"_.._etc_passwd/{uid}/")
    assert all(part not in ("", ".", "..") for part in name.split("/"))


def test_the_site_templates_export_rule_wants_two_factors_so_a_token_exports_nothing(world: World) -> None:
    response = post_export(world, "alice", [world.studies["N1"].study_uid])
    assert response.status_code == 404
    (denied,) = world.events("access.denied")
    assert denied.decision is not None
    assert denied.decision.effect == "deny"


def test_progress_is_shown_to_the_exporter_only(exporting: World) -> None:
    n1 = exporting.studies["N1"]
    app = exporting.app  # progress lives in the app's memory
    response = post_export(exporting, "alice", [n1.study_uid], app=app)
    export_id = response.headers["x-export-id"]
    path = f"/api/v1/exports/{export_id}"
    mine = exporting.get(None, path, app=app, headers=api_headers(exporting, "alice"))
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert body["state"] == "done"
    assert (body["studies_total"], body["studies_done"], body["instances_done"]) == (1, 1, 4)
    assert body["bytes_done"] == n1.size
    assert body["started_at"] == body["finished_at"] == "2026-11-23T10:00:00Z"
    theirs = exporting.get(None, path, app=app, headers=api_headers(exporting, "bob"))
    nothing = exporting.get(None, "/api/v1/exports/0123abcd", app=app, headers=api_headers(exporting, "alice"))
    assert theirs.status_code == nothing.status_code == 404
    assert theirs.content == nothing.content
    assert exporting.get(None, path, app=app).status_code == 401


def test_a_bad_uid_is_a_400_naming_it_and_audited(exporting: World) -> None:
    response = post_export(exporting, "alice", [exporting.studies["N1"].study_uid, "1.2.3/../4"])
    assert response.status_code == 400
    assert "1.2.3/../4" in response.json()["error"]
    (event,) = exporting.events("study.export")
    assert event.outcome.value == "failure"
    assert event.detail["refused"] == "BadRequest"


@pytest.mark.parametrize(
    "body",
    [
        {"studies": []},
        {"studies": ["1.2.3"] * 501},
        {"studies": "1.2.3"},
        {"studies": ["1.2"], "purpose": "fun"},
        {"studies": ["1.2"], "extra": 1},
        {"studies": ["1.2"], "break_glass_reason": "emergency"},  # break-glass never covers exports
    ],
)
def test_a_body_outside_the_api_is_a_400_naming_the_field(exporting: World, body: dict[str, object]) -> None:
    response = exporting.request(None, "POST", "/api/v1/exports", headers=api_headers(exporting, "alice"), json=body)
    assert response.status_code == 400
    assert response.json()["problems"]


def test_the_openapi_document_describes_the_export_routes(exporting: World) -> None:
    paths = exporting.get(None, "/api/openapi.json").json()["paths"]
    assert "application/zip" in paths["/v1/exports"]["post"]["responses"]["200"]["content"]
    assert "get" in paths["/v1/exports/{export_id}"]


def test_no_credentials_no_export(exporting: World) -> None:
    response = exporting.request(None, "POST", "/api/v1/exports", json={"studies": [UNKNOWN]})
    assert response.status_code == 401
    # no study was decided: the only denial is the anonymous request itself (as on /dicomweb)
    assert [e.detail["reason"] for e in exporting.events("access.denied")] == ["no_credentials"]


def test_an_audit_failure_refuses_the_export_before_any_byte(exporting: World) -> None:
    audit = FailingAudit(exporting.site.audit, lambda e: e.type == "study.export")
    response = post_export(
        exporting, "alice", [exporting.studies["N1"].study_uid], app=app_with_audit(exporting, audit)
    )
    assert response.status_code == 503
    assert "audit" in response.json()["error"]
    assert b"DICM" not in response.content
    assert len(audit.refused) == 1


def test_an_audit_failure_mid_export_cuts_the_zip_short(exporting: World) -> None:
    n1 = exporting.studies["N1"]
    other = _store(exporting, "north", "N-100")
    audit = FailingAudit(exporting.site.audit, lambda e: e.type == "study.export" and e.objects.study_uid == other)
    got = _stream(exporting, app_with_audit(exporting, audit), [n1.study_uid, other])
    assert got.status == 200
    assert not got.complete  # the connection drops: the client sees a failed download
    assert len(got.received) >= n1.size
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(got.received))
    assert [e.objects.study_uid for e in exporting.events("study.export")] == [n1.study_uid]
    assert len(audit.refused) == 1


def test_an_archive_down_before_the_first_byte_is_a_502_and_audited(exporting: World) -> None:
    n1 = exporting.studies["N1"]
    archives: dict[str, Archive] = {**exporting.archives, "north": broken_copy(exporting, "north", {n1.study_uid})}
    response = post_export(exporting, "alice", [n1.study_uid], app=exporting.app_with(archives))
    assert response.status_code == 502
    assert "archive" in response.json()["error"]
    (event,) = exporting.events("study.export")
    assert event.outcome.value == "error"
    assert "cannot be reached" in str(event.detail["error"])
    assert event.objects.study_uid == n1.study_uid


def test_an_archive_down_mid_export_ends_the_stream_and_records_the_failure(exporting: World) -> None:
    n1 = exporting.studies["N1"]
    other = _store(exporting, "north", "N-102")
    archives: dict[str, Archive] = {**exporting.archives, "north": broken_copy(exporting, "north", {other})}
    app = exporting.app_with(archives)
    got = _stream(exporting, app, [n1.study_uid, other])
    assert (got.status, got.complete) == (200, False)
    assert b"manifest.json" not in got.received
    events = exporting.events("study.export")
    assert [(e.objects.study_uid, e.outcome.value) for e in events] == [(n1.study_uid, "success"), (other, "error")]
    assert events[0].detail["export"] == events[1].detail["export"]


def test_an_upstream_connection_that_breaks_mid_study_is_a_502_and_audited(exporting: World) -> None:
    n1 = exporting.studies["N1"]
    archives: dict[str, Archive] = {
        **exporting.archives,
        "north": broken_copy(exporting, "north", set(), {n1.study_uid}),
    }
    response = post_export(exporting, "alice", [n1.study_uid], app=exporting.app_with(archives))
    assert response.status_code == 502
    (event,) = exporting.events("study.export")
    assert event.outcome.value == "error"
    assert "connection reset" in str(event.detail["error"])


def test_sixteen_exported_studies_make_the_monitors_export_rule_fire(exporting: World) -> None:
    uids = [_store(exporting, "north", f"N-3{n:02d}") for n in range(16)]
    assert post_export(exporting, "alice", uids[:15]).status_code == 200
    assert _export_alerts(exporting) == []
    assert post_export(exporting, "alice", uids[15:]).status_code == 200
    (alert,) = _export_alerts(exporting)
    assert alert.subject == "actor.principal_id=alice"
    assert len(alert.evidence) == 16


def _stream(world: World, app: Any, studies: list[str]) -> Streamed:
    received = bytearray()
    got = stream_to(app, "/api/v1/exports", {"studies": studies}, api_headers(world, "alice"), received.extend)
    got.received = bytes(received)
    assert got.error is None
    return got


def _export_alerts(world: World) -> list[Alert]:
    engine = Engine(load_rules(None))
    return [a for a in engine.run(world.events()) if a.rule_id == "data.export-spike"]


def _store(world: World, zone: str, patient: str) -> str:
    """One more internal study of one instance in ``zone``'s archive and the catalogue."""
    study = make_study(patient_id=patient, series=1, instances_per_series=1)
    assert run(world.archives[zone].store(study.instances)).ok
    world.site.catalogue.record(study.study_uid, zone=zone, archive=world.archives[zone].name, patient_id=patient,
                                modality="CT")  # fmt: skip
    return study.study_uid
