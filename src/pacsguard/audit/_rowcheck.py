"""Checking stored event rows, one range at a time (in this process or in a worker process).

A range check needs no tree: it confirms each row is present, hashes to its stored leaf
hash, names its own seq and agrees with its searchable columns, and hands back the leaf
hashes. ``verify`` feeds those to the tree in order, so ranges can be checked in parallel.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine

from pacsguard.domain.events import Actor, ObjectRef
from pacsguard.storage import make_engine

__all__ = [
    "CHUNK",
    "CHUNK_LEVEL",
    "COLUMNS",
    "Chunk",
    "Finding",
    "check_chunk",
    "check_pruned",
    "check_range",
    "check_rows",
    "read_pruned",
    "read_range",
]

COLUMNS = ("seq", "occurred_us", "type", "outcome", "principal_id", "ip", "patient_id", "study_uid")
_EPOCH = datetime(1970, 1, 1)  # naive: canonical times are UTC
_US = timedelta(microseconds=1)
_scan: Any = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # the C scanner, without decode()'s wrapper
_sha256 = hashlib.sha256
_engines: dict[str, Engine] = {}


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing that does not verify, located at the first sequence number it affects."""

    seq: int
    kind: str  # missing, altered, moved, node, head, truncated, rewritten, unreadable
    message: str


@dataclass(frozen=True, slots=True)
class Chunk:
    """What a range check hands back, for the good rows from ``lo`` on.

    ``leaves``: their leaf hashes, 32 bytes each. ``nodes[k]``: the complete subtrees of
    level k+1 among them, joined (``lo`` is a multiple of ``CHUNK``, so these are the
    whole tree's nodes too). ``finding``: the first problem, which ended the range.
    """

    lo: int
    leaves: bytes
    nodes: tuple[bytes, ...]
    finding: Finding | None


CHUNK_LEVEL = 16
CHUNK = 1 << CHUNK_LEVEL


def read_range(engine: Engine, lo: int, hi: int) -> list[tuple[Any, ...]]:
    """Rows with lo <= seq < hi, in order: the columns, leaf hash and canonical bytes."""
    return _fetch(
        engine,
        f"SELECT {', '.join(COLUMNS)}, leaf_hash, canonical FROM audit_events "  # noqa: S608 - fixed names
        "WHERE seq >= {mark} AND seq < {mark} ORDER BY seq",
        (lo, hi),
    )


def check_range(url: str, lo: int, hi: int, pruned: int = 0) -> Chunk:
    """Worker entry point: check events lo..hi-1 of the database at ``url`` (see ``check_chunk``)."""
    if url not in _engines:
        _engines[url] = make_engine(url)
    return check_chunk(_engines[url], lo, hi, pruned)


def check_chunk(engine: Engine, lo: int, hi: int, pruned: int) -> Chunk:
    """Check events lo..hi-1; those below ``pruned`` were deleted, their stored leaf hashes stand in."""
    prefix = b""
    if lo < pruned:
        prefix, finding = check_pruned(read_pruned(engine, lo, min(hi, pruned)), lo, min(hi, pruned))
        if finding is not None or hi <= pruned:
            return Chunk(lo, prefix, subtree_levels(prefix, CHUNK_LEVEL), finding)
    return check_rows(read_range(engine, max(lo, pruned), hi), lo, hi, prefix)


def read_pruned(engine: Engine, lo: int, hi: int) -> list[tuple[Any, ...]]:
    """The kept leaf hashes (level-0 nodes) of pruned events lo..hi-1, in order."""
    return _fetch(
        engine,
        "SELECT idx, hash FROM audit_nodes WHERE level = 0 AND idx >= {mark} AND idx < {mark} ORDER BY idx",
        (lo, hi),
    )


def _fetch(engine: Engine, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """All rows of ``sql`` (``{mark}`` stands for the driver's placeholder) through the
    driver's own cursor: at a million rows SQLAlchemy's row objects cost more than the checks."""
    mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(sql.replace("{mark}", mark), params)
        rows = cast(list[tuple[Any, ...]], cursor.fetchall())
        cursor.close()
    finally:
        raw.close()
    return rows


def check_pruned(rows: list[tuple[Any, ...]], lo: int, hi: int) -> tuple[bytes, Finding | None]:
    """The joined leaf hashes of pruned events lo..hi-1, and the first one missing or malformed."""
    leaves: list[bytes] = []
    for expected, (idx, leaf) in enumerate(rows, start=lo):
        if int(idx) != expected or len(leaf) != 32:
            break
        leaves.append(bytes(leaf))
    done = lo + len(leaves)
    if done < hi:
        message = f"event {done} was pruned but its leaf hash is not kept (level-0 tree node missing or malformed)"
        return b"".join(leaves), Finding(done, "missing", message)
    return b"".join(leaves), None


def check_rows(rows: Iterable[tuple[Any, ...]], lo: int, hi: int, prefix: bytes = b"") -> Chunk:
    """Check rows that should be exactly the events lo..hi-1 after those whose leaves are ``prefix``.

    Stops at the first problem. The hot loop of ``verify``: per row one SHA-256 and one structural read of the
    canonical bytes (``_columns``); a full JSON decode only for a row whose columns
    do not match at once (to name what differs, or to read escaped strings).
    """
    leaves: list[bytes] = [prefix]
    add = leaves.append
    expected = lo + len(prefix) // 32
    finding: Finding | None = None
    for row in rows:
        try:
            data = row[9]
            if type(data) is not bytes:
                data = bytes(data)
            leaf = _sha256(b"\x00" + data).digest()  # merkle.leaf_hash, inlined: this runs a million times
            if row[0] != expected or leaf != row[8] or _columns(data) != row[:8]:
                finding = _row_problem(row, expected)
                if finding is not None:
                    break
        except Exception as exc:  # any malformed row is a finding, never a traceback
            finding = Finding(expected, "unreadable", f"event {expected} cannot be read: {type(exc).__name__}: {exc}")
            break
        add(leaf)
        expected += 1
    else:
        if expected < hi:
            finding = Finding(expected, "missing", f"event {expected} is missing")
    joined = b"".join(leaves)
    return Chunk(lo, joined, subtree_levels(joined, CHUNK_LEVEL), finding)


def _columns(data: bytes) -> tuple[Any, ...] | None:
    """(seq, occurred_us, type, outcome, principal_id, ip, patient_id, study_uid) read from canonical bytes.

    One regular expression instead of a JSON parse: canonical bytes without a backslash
    hold only unescaped strings, so actor and objects are their keys in sorted order
    and the tail is fixed (``_EVENT``). ``None`` when the bytes have an escape or do not
    fit (then the caller decodes the JSON); the bytes themselves are proven by the leaf
    hash, the tree and the signed heads.
    """
    if b"\\" in data:
        return None
    found = _EVENT.fullmatch(data)
    if found is None:
        return None
    ip, principal, patient, study, second, micro, outcome, seq, event_type = found.groups()  # sorted keys
    base = _seconds.get(second)
    if base is None:
        if len(_seconds) > 4096:
            _seconds.clear()
        base = _seconds[second] = (datetime.fromisoformat(second.decode()) - _EPOCH) // _US
    return (
        int(seq),
        base + int(micro),
        event_type.decode(),
        outcome.decode(),
        None if principal is None else principal.decode(),
        None if ip is None else ip.decode(),
        None if patient is None else patient.decode(),
        None if study is None else study.decode(),
    )


def _object_pattern(fields: tuple[str, ...], captured: tuple[str, ...]) -> bytes:
    """The body of a canonical actor/objects object without escapes: optional keys in sorted order."""
    parts = []
    for name in sorted(fields):
        if name in _INT_FIELDS:
            value = rb"-?[0-9]+"
        elif name in _LIST_FIELDS:
            value = rb'\[(?:"[^"]*"(?:,"[^"]*")*)?\]'
        else:
            value = rb'"([^"]*)"' if name in captured else rb'"[^"]*"'
        parts.append(rb'(?:,?"%s":%s)?' % (name.encode(), value))
    return b"".join(parts)


_INT_FIELDS = {"auth_strength", "count", "bytes"}
_LIST_FIELDS = {"roles"}
_EVENT = re.compile(
    rb'\{"actor":\{'
    + _object_pattern(Actor.__slots__, ("principal_id", "ip"))
    + rb'\},"decision":.*,"objects":\{'
    + _object_pattern(ObjectRef.__slots__, ("patient_id", "study_uid"))
    + rb'\},"occurred_at":"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})\.([0-9]{6})Z",'
    rb'"outcome":"([a-z]+)","seq":(0|[1-9][0-9]*),"type":"([^"]*)"\}',
    re.DOTALL,
)
_seconds: dict[bytes, int] = {}  # "YYYY-MM-DDTHH:MM:SS" -> microseconds since 1970: events share seconds


def subtree_levels(leaves: bytes, levels: int) -> tuple[bytes, ...]:
    """The complete subtrees of levels 1..``levels`` over ``leaves`` (32 bytes each), joined per level.

    A level at a time, one SHA-256 per node: the same nodes ``RightEdge.append`` would
    finish, without its per-leaf bookkeeping (the leaves start at a multiple of 2^levels).
    """
    out: list[bytes] = []
    below = leaves
    sha256 = hashlib.sha256
    for _ in range(levels):
        below = b"".join([sha256(b"\x01" + below[i : i + 64]).digest() for i in range(0, len(below) - 63, 64)])
        out.append(below)
    return tuple(out)


def _row_problem(row: tuple[Any, ...], expected: int) -> Finding | None:
    """What is wrong with a row the fast check did not pass (``None``: nothing, it was escaped text)."""
    seq = int(row[0])
    if seq != expected:
        return Finding(expected, "missing", f"event {expected} is missing (the next stored is {seq})")
    data = bytes(row[9])
    if _sha256(b"\x00" + data).digest() != bytes(row[8]):
        return Finding(seq, "altered", f"event {seq}: its bytes do not match its stored leaf hash")
    problem = _columns_problem(row, _decode(data.decode("utf-8")))
    return None if problem is None else Finding(seq, problem[0], f"event {seq}: {problem[1]}")


def _columns_problem(row: tuple[Any, ...], form: dict[str, Any]) -> tuple[str, str] | None:
    if form.get("seq") != row[0]:
        return "moved", f"stored at seq {row[0]} but its signed bytes say seq {form.get('seq')}"
    actor, objects = form["actor"], form["objects"]
    expected = (
        (datetime.fromisoformat(form["occurred_at"][:-1]) - _EPOCH) // _US,
        form["type"],
        form["outcome"],
        actor.get("principal_id"),
        actor.get("ip"),
        objects.get("patient_id"),
        objects.get("study_uid"),
    )
    if row[1:8] == expected:
        return None
    for name, stored, real in zip(COLUMNS[1:], row[1:8], expected, strict=True):
        if stored != real:
            return "altered", f"column {name} says {stored!r} but the event says {real!r}"
    return "altered", "its columns do not match the event"


def _decode(text: str) -> Any:
    """``json.loads`` for the whole of ``text``; raises ``ValueError``/``StopIteration`` if it is not JSON."""
    value, end = _scan(text, 0)
    if end != len(text):
        raise ValueError(f"extra data after the event at offset {end}")
    return value
