"""STOW-RS through the gateway: the store right on the target zone, all or nothing."""

from __future__ import annotations

import pytest

from pacsguard.archives import QidoQuery
from pacsguard.archives.parts import join_related
from pacsguard.archives.synthetic import make_study
from tests.world import World, run

BOUNDARY = "b0undary"
CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


def _stow(world: World, who: str, body: bytes, query: str = "", content_type: str = CONTENT_TYPE) -> int:
    response = world.request(who, "POST", f"/dicomweb/studies{query}", content=body,
                             headers={"Content-Type": content_type})  # fmt: skip
    return response.status_code


def _in_archive(world: World, zone: str, study_uid: str) -> bool:
    return bool(run(world.archives[zone].search_studies(QidoQuery(study_uids=(study_uid,)))))


def test_stow_lands_in_the_callers_zone_and_is_catalogued(world: World) -> None:
    study = make_study(patient_id="N-500", accession="NEW")
    response = world.request("alice", "POST", "/dicomweb/studies", content=join_related(study.instances, BOUNDARY),
                             headers={"Content-Type": CONTENT_TYPE})  # fmt: skip
    assert response.status_code == 200
    referenced = response.json()["00081199"]["Value"]
    assert len(referenced) == 2
    assert referenced[0]["00081190"]["Value"][0].startswith("http://gw.test/dicomweb/studies/")
    assert _in_archive(world, "north", study.study_uid)
    assert not _in_archive(world, "south", study.study_uid)
    entry = world.site.catalogue.get(study.study_uid)
    assert entry is not None
    assert (entry.zone, entry.patient_id) == ("north", "N-500")
    (event,) = world.events("study.store")
    assert (event.objects.study_uid, event.objects.count, event.objects.bytes) == (study.study_uid, 2, study.size)


def test_stow_to_another_zone_needs_the_right_there(world: World) -> None:
    study = make_study(patient_id="S-500")
    body = join_related(study.instances, BOUNDARY)
    assert _stow(world, "alice", body, "?zone=south") == 403
    assert not _in_archive(world, "south", study.study_uid)
    (denied,) = world.events("access.denied")
    assert denied.detail["action"] == "store"
    assert _stow(world, "bob", body, "?zone=south") == 200
    assert _in_archive(world, "south", study.study_uid)
    assert _stow(world, "bob", body, "?zone=nowhere") == 400


def _corrupt(data: bytes) -> bytes:
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("case", "status"),
    [("malformed", 400), ("not-dicom", 400), ("corrupt", 400), ("wrong-type", 400), ("not-multipart", 400),
     ("too-large", 413)],
)  # fmt: skip
def test_bad_stow_input_is_refused_audited_and_stores_nothing(world: World, case: str, status: int) -> None:
    study = make_study(patient_id="N-600")
    good, second = study.instances
    content_type = CONTENT_TYPE
    if case == "malformed":
        body = join_related([good, second], BOUNDARY)[:-20]
    elif case == "not-dicom":
        body = join_related([good, b"hello, not DICOM"], BOUNDARY)
    elif case == "corrupt":
        body = join_related([good, _corrupt(second)], BOUNDARY)
    elif case == "wrong-type":
        body = join_related([good], BOUNDARY) [:-len(f"--{BOUNDARY}--\r\n")] + join_related([second], BOUNDARY,
                                                                                          "text/plain")  # fmt: skip
    elif case == "not-multipart":
        body, content_type = good, "application/dicom"
    else:
        body = join_related([good, b"\0" * (3 << 20)], BOUNDARY)
    assert _stow(world, "alice", body, content_type=content_type) == status
    assert not _in_archive(world, "north", study.study_uid)
    assert world.site.catalogue.get(study.study_uid) is None
    (event,) = world.events("study.store")
    assert event.outcome.value == "failure"
    assert event.detail["refused"] in ("BadRequest", "RequestTooLarge")
