"""RFC 5425 octet counting cut from a byte stream, byte by byte or all at once."""

from __future__ import annotations

import pytest

from pacsguard.ingest import Bad, Frame, Framer


def _feed(framer: Framer, data: bytes, step: int) -> list[Frame | Bad]:
    out: list[Frame | Bad] = []
    for i in range(0, len(data), step):
        out.extend(framer.feed(data[i : i + step]))
    return out


@pytest.mark.parametrize("step", [1, 3, 1000])
def test_frames_are_cut_however_the_bytes_arrive(step: int) -> None:
    stream = b"5 hello3 abc11 hello world"
    framer = Framer(max_bytes=100)
    assert _feed(framer, stream, step) == [Frame(b"hello"), Frame(b"abc"), Frame(b"hello world")]
    assert framer.end() is None


@pytest.mark.parametrize("step", [1, 7, 10_000])
def test_an_oversized_frame_is_skipped_keeping_its_head(step: int) -> None:
    framer = Framer(max_bytes=10, keep_bytes=4)
    out = _feed(framer, b"20 abcdefghijklmnopqrst2 ok", step)
    assert out == [Bad("oversized", "message of 20 bytes is over the limit of 10", b"abcd", 20, False), Frame(b"ok")]
    assert not framer.broken


@pytest.mark.parametrize(
    ("stream", "reason"),
    [(b"<13>1 no count", "bad-frame-length"), (b"05 hello", "bad-frame-length"),
     (b"12345678901 x", "bad-frame-length"), (b"99999999999", "bad-frame-length")],
)  # fmt: skip
def test_a_header_that_is_not_a_count_breaks_the_stream(stream: bytes, reason: str) -> None:
    framer = Framer(max_bytes=100)
    (bad,) = framer.feed(stream)
    assert isinstance(bad, Bad)
    assert (bad.reason, bad.fatal, framer.broken) == (reason, True, True)
    assert framer.feed(b"5 hello") == []  # nothing more is taken from a broken stream


def test_a_stream_ending_inside_a_frame_is_a_lying_length() -> None:
    framer = Framer(max_bytes=100)
    assert framer.feed(b"5 hello50 only a little") == [Frame(b"hello")]
    bad = framer.end()
    assert bad is not None
    assert (bad.reason, bad.raw, bad.fatal) == ("truncated-frame", b"50 only a little", True)


def test_a_length_beyond_any_size_is_refused_without_reading_it() -> None:
    framer = Framer(max_bytes=100, skip_limit=1000)
    (bad,) = framer.feed(b"5000 x")
    assert isinstance(bad, Bad)
    assert bad.reason == "bad-frame-length"
