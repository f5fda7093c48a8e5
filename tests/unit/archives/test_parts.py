"""Checking DICOM parts and splitting multipart/related bodies."""

from __future__ import annotations

import pytest

from pacsguard.archives.parts import PartRefused, inspect_part, join_related, related_boundary, split_related
from pacsguard.archives.synthetic import make_study


def test_join_and_split_round_trip() -> None:
    parts = [b"one", b"", b"three\r\n--x"]
    body = join_related(parts, "b0und")
    split = split_related(body, 'multipart/related; type="application/dicom"; boundary="b0und"')
    assert [payload for _, payload in split] == parts
    assert all(headers["content-type"] == "application/dicom" for headers, _ in split)


@pytest.mark.parametrize("preamble", [b"\r\n", b"This is a DICOM study.\r\n"])
def test_a_preamble_before_the_first_boundary_is_skipped(preamble: bytes) -> None:
    body = preamble + join_related([b"one", b"two"], "b0und")
    split = split_related(body, "multipart/related; boundary=b0und")
    assert [payload for _, payload in split] == [b"one", b"two"]


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        (b"--b\r\n\r\nx\r\n--b--", "application/dicom", "not multipart/related"),
        (b"--b\r\n\r\nx\r\n--b--", "multipart/related", "without a boundary"),
        (b"nothing here", "multipart/related; boundary=b", "no boundary line"),
        (b"--b\r\nContent-Type: a\r\n\r\nx\r\n--b", "multipart/related; boundary=b", "not closed"),
        (b"--b\r\nno colon\r\n\r\nx\r\n--b--", "multipart/related; boundary=b", "malformed part header"),
        (b"--b\r\nContent-Type: a\r\nx\r\n--b--", "multipart/related; boundary=b", "without a header block"),
        (b"junk--b\r\n\r\nx\r\n--b--", "multipart/related; boundary=b", "malformed boundary line"),
    ],
)
def test_malformed_bodies_are_refused(body: bytes, content_type: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        split_related(body, content_type)


def test_boundary_is_read_quoted_or_not() -> None:
    assert related_boundary("multipart/related; boundary=abc; type=x") == "abc"
    assert related_boundary('Multipart/Related; BOUNDARY="a b"') == "a b"


def test_inspect_reads_identifiers_and_refuses_broken_files() -> None:
    study = make_study(patient_id="P7", modality="MR", description="Knee")
    info = inspect_part(study.instances[0])
    assert (info.study_uid, info.sop_instance_uid, info.patient_id, info.modality) == (
        study.study_uid,
        study.sop_uids[0],
        "P7",
        "MR",
    )
    assert info.study_description == "Knee"
    assert info.size == len(study.instances[0])
    for broken, says in [
        (study.instances[0][:-10], "truncated"),
        (study.instances[0][:-520], "without pixel data"),
        (b"\0" * 128 + b"DICM" + b"\xff" * 40, "corrupt|empty"),
        (b"GIF89a", "not a DICOM"),
    ]:
        with pytest.raises(PartRefused, match=says):
            inspect_part(broken)
