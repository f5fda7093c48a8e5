"""The issue's leak list for a denied study, also through HEAD and at series and instance
level; and each kind of bad input: a clear 4xx and an audit event, never a 500."""

from __future__ import annotations

import pytest

from pacsguard.archives.parts import join_related
from pacsguard.archives.synthetic import make_study
from tests.world import World

FORMS = [
    "/dicomweb/studies/{s}",
    "/dicomweb/studies/{s}/",
    "/dicomweb//studies/{s}",
    "/dicomweb/studies//{s}/metadata",
    "/dicomweb/studies/{enc}",
    "/dicomweb/studies/{enc}/series/{r}/metadata",
    "/dicomweb/studies/x/%2E%2E/{s}",
    "/dicomweb/studies/{s}/series/{r}/instances/{i}/../../../metadata",
    "/dicomweb/STUDIES/{s}",
    "/dicomweb/Studies/{s}/metadata",
    "/dicomweb/studies/{s}/series/{r}/instances/{i}/frames/1",
    "/dicomweb/studies/{s}/series/{r}/instances/{i}/bulk/7FE00010",
    "/dicomweb/studies/{s}/series",
    "/dicomweb/studies/{s}/instances?includefield=all",
    "/dicomweb/studies?StudyInstanceUID={s}&includefield=all",
    "/dicomweb/series?StudyInstanceUID={s}",
    "/dicomweb/series?SeriesInstanceUID={r}&includefield=all",
    "/dicomweb/instances?SOPInstanceUID={i}&includefield=all",
]


def _other(uid: str) -> str:
    """A UID of the same length that names no study (so error bodies have equal sizes)."""
    return uid[:-1] + ("2" if uid[-1] == "1" else "1")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_denied_study_answers_exactly_like_an_unknown_one(world: World, method: str) -> None:
    n2 = world.studies["N2"]
    s, r, i = n2.study_uid, n2.series_uids[0], n2.sop_uids[0]
    o = _other(s)
    app = world.app
    for form in FORMS:  # one site for all forms: each form is two requests
        denied = world.request("alice", method, form.format(s=s, r=r, i=i, enc=s.replace(".", "%2E")), app=app)
        unknown = world.request("alice", method, form.format(s=o, r=r, i=i, enc=o.replace(".", "%2E")), app=app)
        assert denied.status_code in (200, 400, 404), form  # 400: httpx resolves ``..`` into a series "metadata"
        assert (denied.status_code, denied.content) == (unknown.status_code, unknown.content), form
        assert denied.headers == unknown.headers, form
        if method == "HEAD":
            assert denied.content == b"", form
        for secret in (s, r, i, "N-101", "Nord^Vip"):
            assert secret not in denied.text, form


SEARCHES = [
    "/dicomweb/studies?PatientName=nord^vip&fuzzymatching=true",
    "/dicomweb/studies?PatientName=NORD*&fuzzymatching=true&includefield=all",
    "/dicomweb/series?PatientID=N-101&includefield=all",
    "/dicomweb/series?PatientID=N*",
    "/dicomweb/instances?PatientID=*&includefield=all",
    "/dicomweb/instances?PatientName=Nord?Vip",
    "/dicomweb/studies?PatientID=N-10?&limit=1&offset=1",
    "/dicomweb/studies?AccessionNumber=N*&includefield=all&limit=5",
]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_searches_never_show_the_denied_study(world: World, method: str) -> None:
    n2 = world.studies["N2"]
    app = world.app
    for query in SEARCHES:
        response = world.request("alice", method, query, app=app)
        assert response.status_code == 200, query
        for secret in (n2.study_uid, *n2.series_uids, *n2.sop_uids, "N-101", "Nord^Vip"):
            assert secret not in response.text, query
        if method == "GET":
            found = response.json()
            assert all(item.get("0020000D", {}).get("Value", [""])[0] != n2.study_uid for item in found), query


BAD = [
    ("GET", "/dicomweb/studies/1.02.3/series", "study.query", "StudyInstanceUID"),
    ("GET", "/dicomweb/studies/1.2.3/series/1..2", "study.read", "SeriesInstanceUID"),
    ("GET", "/dicomweb/studies/1.2.3/series/1.2/instances/x.y/metadata", "study.read", "SOPInstanceUID"),
    ("HEAD", "/dicomweb/studies/1.2.3a", "study.read", ""),
    ("DELETE", "/dicomweb/studies/1.2.-3", "study.delete", "StudyInstanceUID"),
    ("POST", "/dicomweb/studies/1.02", "study.store", "StudyInstanceUID"),
    ("GET", "/dicomweb/studies?StudyInstanceUID=1.2.3,1.02", "study.query", "StudyInstanceUID"),
    ("GET", "/dicomweb/series?SeriesInstanceUID=" + "1." * 40 + "1", "study.query", "SeriesInstanceUID"),
    ("GET", "/dicomweb/studies?StudyDate=20240230", "study.query", "StudyDate"),
    ("GET", "/dicomweb/studies?StudyDate=20240301-2024", "study.query", "StudyDate"),
    ("GET", "/dicomweb/studies?StudyDate=-", "study.query", "StudyDate"),
]


def test_bad_uids_and_dates_are_400s_with_an_audit_event(world: World) -> None:
    app = world.app
    for method, path, event_type, key in BAD:
        response = world.request("alice", method, path, app=app)
        assert response.status_code == 400, path
        if method != "HEAD":
            assert key in response.json()["error"], path
        event = world.events()[-1]
        assert (event.type, event.outcome.value, event.actor.principal_id) == (event_type, "failure", "alice"), path


def test_an_oversized_request_is_refused_from_its_declared_length_and_audited(world: World) -> None:
    study = make_study(patient_id="N-900")
    body = join_related(study.instances, "b0undary")
    headers = {"Content-Type": 'multipart/related; type="application/dicom"; boundary=b0undary',
               "Content-Length": str(3 << 20)}  # fmt: skip
    response = world.request("alice", "POST", "/dicomweb/studies", content=body + b"\0" * ((3 << 20) - len(body)),
                             headers=headers)  # fmt: skip
    assert response.status_code == 413
    assert "bytes" in response.json()["error"]
    (event,) = world.events("study.store")
    assert (event.outcome.value, event.detail["refused"]) == ("failure", "RequestTooLarge")
    assert world.site.catalogue.get(study.study_uid) is None
