"""The pieces of a streamed export: the multipart splitter, the sealed spool, safe names."""

from __future__ import annotations

import io
import itertools
import zipfile
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pacsguard.archives.parts import join_related
from pacsguard.gateway.zipstream import PartSplitter, Piece, SealedSpool, ZipSink, entry_info, open_zip, safe_component

BOUNDARY = "b0und4ry"
CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
# Payload bytes that look like the start of a boundary, to catch a splitter that cuts early.
TRICKY = st.sampled_from([b"\r\n", b"\r\n-", b"\r\n--", b"\r\n--b0und", b"--b0und4r", b"y", b"\x00" * 7])
PAYLOAD = (
    st.lists(st.one_of(st.binary(max_size=40), TRICKY), max_size=12)
    .map(b"".join)
    .filter(lambda p: b"\r\n--b0und4ry" not in b"\r\n" + p)  # a payload never holds its delimiter
)


def split(body: bytes, cuts: list[int]) -> list[tuple[dict[str, str], bytes]]:
    splitter = PartSplitter(CONTENT_TYPE)
    pieces: list[Piece] = []
    edges = [0, *sorted(c % (len(body) + 1) for c in cuts), len(body)]
    for start, end in itertools.pairwise(edges):
        pieces += splitter.feed(body[start:end])
    splitter.close()
    parts: list[tuple[dict[str, str], bytes]] = []
    for piece in pieces:
        if isinstance(piece, dict):
            parts.append((piece, b""))
        elif isinstance(piece, bytes):
            parts[-1] = (parts[-1][0], parts[-1][1] + piece)
    return parts


@given(payloads=st.lists(PAYLOAD, max_size=5), cuts=st.lists(st.integers(min_value=0), max_size=20))
def test_any_body_cut_anywhere_splits_into_its_parts(payloads: list[bytes], cuts: list[int]) -> None:
    body = join_related(payloads, BOUNDARY)
    parts = split(body, cuts)
    assert [p for _, p in parts] == payloads
    assert all(h["content-type"] == "application/dicom" for h, _ in parts)


def test_a_preamble_and_transport_padding_are_skipped() -> None:
    body = b"preamble text\r\n--b0und4ry  \t\r\nContent-Type: application/dicom\r\n\r\nDATA\r\n--b0und4ry--\r\n"
    assert split(body, [3, 20, 40]) == [({"content-type": "application/dicom"}, b"DATA")]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"--b0und4ry\r\nContent-Type: x\r\n\r\nDATA", "before its final boundary"),
        (b"--b0und4ryXX\r\n\r\nDATA\r\n--b0und4ry--", "malformed boundary line"),
        (b"--b0und4ry\r\nno colon here\r\n\r\nDATA\r\n--b0und4ry--", "malformed part header"),
        (b"--b0und4ry\r\n" + b"X: y\r\n" * 5000, "overlong header block"),
        (b"x" * 20000, "no boundary line"),
        (b"--b0und4ry\r\n\r\nDATA\r\n--b0und4ry--\r\nmore parts", "after the final"),
    ],
)
def test_a_malformed_body_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split(body, [7])


def test_a_content_type_without_a_boundary_is_refused() -> None:
    with pytest.raises(ValueError, match="boundary"):
        PartSplitter("multipart/related; type=application/dicom")


def test_the_spool_gives_back_its_records_in_order_and_never_holds_plaintext(tmp_path: str) -> None:
    spool = SealedSpool(str(tmp_path))
    secret = b"Nord^Anna N-100 " * 1000
    try:
        spool.write(secret)
        spool.write(b"second")
        spool._file.flush()
        spool._file.seek(0)
        on_disk = spool._file.read()
        assert b"Nord^Anna" not in on_disk
        spool.rewind()
        assert [spool.read(), spool.read()] == [secret, b"second"]
        with pytest.raises(EOFError):
            spool.read()
        spool.reset()
        spool.write(b"next study")
        spool.rewind()
        assert spool.read() == b"next study"
    finally:
        spool.close()


def test_two_spools_seal_the_same_bytes_differently() -> None:
    one, two = SealedSpool(), SealedSpool()
    try:
        for spool in (one, two):
            spool.write(b"same")
            spool._file.seek(0)
        assert one._file.read() != two._file.read()
    finally:
        one.close()
        two.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("N-100", "N-100"),
        ("1.2.840.10008.5.1", "1.2.840.10008.5.1"),
        ("..", "unknown"),
        ("../../etc/passwd", "_.._etc_passwd"),
        ("/abs", "_abs"),
        ("a\\b", "a_b"),
        ("Müller Jörg", "M_ller_J_rg"),
        ("", "unknown"),
        ("  ", "unknown"),
        ("x" * 100, "x" * 64),
        ("\x00\n", "unknown"),
    ],
)
def test_path_components_are_made_harmless(text: str, expected: str) -> None:
    assert safe_component(text) == expected


def test_the_zip_sink_makes_a_readable_zip_with_data_descriptors() -> None:
    sink = ZipSink()
    archive = open_zip(sink)
    out = io.BytesIO()
    with archive.open(entry_info("a/b.dcm", 5, datetime(1970, 1, 1)), "w") as member:
        member.write(b"hello")
        out.write(sink.drain())
    archive.close()
    out.write(sink.drain())
    with zipfile.ZipFile(out) as back:
        (info,) = back.infolist()
        assert info.flag_bits & 0x08  # sizes and CRC follow the data
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert back.read("a/b.dcm") == b"hello"


def test_an_entry_declared_over_4_gib_gets_zip64_sizes() -> None:
    sink = ZipSink()
    archive = open_zip(sink)
    out = io.BytesIO()
    with archive.open(entry_info("big.dcm", 5 << 30, datetime(2026, 11, 23)), "w") as member:
        member.write(b"hello")  # declared size decides the header form; the descriptor has the real one
    archive.close()
    out.write(sink.drain())
    data = out.getvalue()
    extra_length = int.from_bytes(data[28:30], "little")
    extra = data[30 + len("big.dcm") : 30 + len("big.dcm") + extra_length]
    assert extra[:2] == b"\x01\x00"  # the ZIP64 extended information field (APPNOTE 4.5.3)
    with zipfile.ZipFile(out) as back:
        assert back.read("big.dcm") == b"hello"
