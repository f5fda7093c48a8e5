"""The durable log: numbering, group commit, restart, heads, witnesses, fail closed."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, text

from pacsguard.audit import AuditLog, AuditOptions, FileWitness, Receipt, verify, verify_head
from pacsguard.audit.canonical import canonical_bytes, prepare
from pacsguard.audit.merkle import RightEdge, leaf_hash
from pacsguard.audit.store import AuditStore, Companion
from pacsguard.clock import FakeClock
from pacsguard.domain import AuditEvent
from pacsguard.errors import AuditError, AuditUnavailable
from pacsguard.ingest import IngestStore
from tests.unit.audit.conftest import OpenLog, fill, sample


def test_events_are_numbered_from_zero_and_durable(open_log: OpenLog, engine: Engine, clock: FakeClock) -> None:
    log = open_log()
    recorded = fill(log, clock, 12)
    assert [e.seq for e in recorded] == list(range(12))
    assert log.size == 12
    store = AuditStore(engine)
    assert store.size() == 12
    edge = RightEdge()
    for e in recorded:
        stored = store.leaf(e.seq or 0)
        assert stored is not None
        assert stored[0] == canonical_bytes(e)
        edge.append(leaf_hash(stored[0]))
    assert edge.root() == log.root()


def test_emit_waits_and_async_callers_await(open_log: OpenLog, clock: FakeClock) -> None:
    log = open_log()
    log.emit(sample(0, clock))
    assert log.size == 1

    async def many() -> list[int]:
        events = await asyncio.gather(*(log.append(sample(i, clock)) for i in range(20)))
        return [e.seq if e.seq is not None else -1 for e in events]

    assert sorted(asyncio.run(many())) == list(range(1, 21))


def test_a_receipt_awaited_after_its_commit_gives_the_event_or_the_error(
    open_log: OpenLog, engine: Engine, clock: FakeClock
) -> None:
    async def awaited(receipt: Receipt) -> AuditEvent:
        return await receipt

    log = open_log()
    committed = log.append(sample(0, clock))
    assert committed.result(timeout=60).seq == 0
    assert asyncio.run(awaited(committed)) == committed.result()
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE audit_events RENAME TO audit_events_moved"))
    failed = log.append(sample(1, clock))
    with pytest.raises(AuditUnavailable, match="cannot record"):
        failed.result(timeout=60)
    with pytest.raises(AuditUnavailable, match="cannot record"):
        asyncio.run(awaited(failed))
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE audit_events_moved RENAME TO audit_events"))


def test_reopening_continues_the_same_tree(open_log: OpenLog, engine: Engine, clock: FakeClock) -> None:
    first = open_log()
    fill(first, clock, 11)
    first.close()
    second = open_log()
    assert second.size == 11
    fill(second, clock, 6)
    second.close()
    report = verify(engine, None)
    assert report.ok, report.findings
    assert report.size == 17
    assert report.root == second.root()


def test_heads_every_n_events_on_time_and_on_demand(
    open_log: OpenLog, engine: Engine, clock: FakeClock, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    witness = FileWitness(tmp_path / "witness" / "heads.jsonl")
    log = open_log(options=AuditOptions(head_every_events=5, head_every_seconds=600), witnesses=[witness])
    fill(log, clock, 12)
    store = AuditStore(engine)
    sizes = [0] + [h.size for h in store.heads()]
    assert sizes[-1] >= 10  # at the first commit after every 5 events (a batch may hold more)
    assert all(b - a >= 5 for a, b in itertools.pairwise(sizes))
    clock.advance(seconds=601)
    log.emit(sample(99, clock))
    sizes = [h.size for h in store.heads()]
    assert sizes[-1] == 13
    head = log.sign_head()
    assert head.size == 13
    assert head.root_hash == log.root()
    assert verify_head(head, signing_key.public_key())
    assert [h.size for h in witness.heads()] == [h.size for h in store.heads()]
    lines = (tmp_path / "witness" / "heads.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["root_hash"] == head.root_hash.hex()


def test_without_a_key_there_are_no_heads(open_log: OpenLog, engine: Engine, clock: FakeClock) -> None:
    log = open_log(signing_key=None)
    fill(log, clock, 7)
    assert AuditStore(engine).heads() == []
    with pytest.raises(AuditError, match="no signing key"):
        log.sign_head()


def test_a_failing_database_fails_closed_and_reports_health(
    open_log: OpenLog, engine: Engine, clock: FakeClock
) -> None:
    log = open_log()
    fill(log, clock, 3)
    assert log.health.state == "healthy"
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE audit_events RENAME TO audit_events_moved"))
    with pytest.raises(AuditUnavailable, match="cannot record"):
        log.emit(sample(3, clock))
    failing = log.health
    assert failing.state == "failing"
    assert failing.reason
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE audit_events_moved RENAME TO audit_events"))
    assert log.append(sample(4, clock)).result(timeout=60).seq == 3
    recovered = log.health
    assert recovered.state == "healthy"


def test_a_closed_log_refuses(open_log: OpenLog, clock: FakeClock) -> None:
    log = open_log()
    log.close()
    with pytest.raises(AuditUnavailable, match="closed"):
        log.emit(sample(0, clock))


def test_bad_input_is_recorded_never_refused(open_log: OpenLog, engine: Engine, clock: FakeClock) -> None:
    log = open_log()
    huge = log.append(sample(0, clock, detail={f"k{i}": "x" * 1000 for i in range(20)})).result(timeout=60)
    odd = log.append(sample(1, clock, type="made.up", detail={"name": "caf\udce9", "raw": b"\xff"})).result(timeout=60)
    assert huge.detail["_truncated"] is True
    assert odd.detail["_unknown_type"] is True
    assert odd.detail["_replaced"] == ["detail.name", "detail.raw"]
    assert verify(engine, None).ok


def test_opening_an_unmigrated_database_is_refused(tmp_path: Path) -> None:
    from pacsguard.storage import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(AuditUnavailable, match="cannot be read"):
        AuditLog(engine)
    engine.dispose()


def test_settings_build_options_and_witnesses(tmp_path: Path) -> None:
    from pacsguard.audit.settings import AuditSettings, options, witnesses

    settings = AuditSettings(head_every_events=7, witness_file="heads.jsonl", max_detail_bytes=1024)
    assert options(settings).head_every_events == 7
    assert options(settings).limits.max_detail_bytes == 1024
    [witness] = witnesses(settings, lambda p: tmp_path / p)
    assert isinstance(witness, FileWitness)
    assert witness.path == tmp_path / "heads.jsonl"
    assert witnesses(AuditSettings(), lambda p: tmp_path / p) == []


def test_one_event_that_cannot_be_encoded_is_refused_alone(open_log: OpenLog, engine: Engine, clock: FakeClock) -> None:
    log = open_log()
    with log._cond:  # the writer cannot take the batch until all three are in it (the lock is re-entrant)
        good = log.append(sample(0, clock))
        bad = log.append(sample(1, clock, outcome="no such outcome"))
        after = log.append(sample(2, clock))
    assert good.result(timeout=60).seq == 0
    with pytest.raises(AuditUnavailable, match="cannot encode"):
        bad.result(timeout=60)
    recorded = after.result(timeout=60)
    assert recorded.seq == 1
    assert recorded.occurred_at == sample(2, clock).occurred_at
    assert log.size == 2
    assert verify(engine, None).ok
    assert (good.seq(), after.seq()) == (0, 1)  # the seq alone, as a bulk import asks for it
    with pytest.raises(AuditUnavailable, match="cannot encode"):
        bad.seq()


def test_a_large_batch_is_stored_exactly(open_log: OpenLog, engine: Engine, clock: FakeClock) -> None:
    """One batch of 100 events (and its 99 tree nodes): on PostgreSQL they go in by COPY."""
    log = open_log()
    with log._cond:  # the writer cannot take the batch until all are in it (the lock is re-entrant)
        receipts = [log.append(sample(i, clock)) for i in range(100)]
    recorded = [r.result(timeout=60) for r in receipts]
    store = AuditStore(engine)
    assert [store.leaf(e.seq or 0) for e in recorded] == [
        (canonical_bytes(e), leaf_hash(canonical_bytes(e))) for e in recorded
    ]
    report = verify(engine, None)
    assert report.ok, report.findings
    assert (report.size, report.root) == (100, log.root())


def test_commit_listeners_hear_each_commit_and_cannot_break_the_log(engine: Engine) -> None:
    heard: list[int] = []

    def broken(_size: int) -> None:
        raise RuntimeError("listener bug")

    with AuditLog(engine) as log:
        log.on_commit(heard.append)
        log.on_commit(broken)
        log.emit(AuditEvent("login.success", datetime(2026, 1, 5, tzinfo=UTC)))
        log.emit(AuditEvent("login.success", datetime(2026, 1, 5, tzinfo=UTC)))
    assert heard == [1, 2]


def test_prepared_events_are_stored_as_appended_ones_and_their_receipts_give_the_seq(
    open_log: OpenLog, engine: Engine, clock: FakeClock
) -> None:
    log = open_log()
    log.append(sample(0, clock)).result(timeout=60)
    prepared = [prepare(sample(i, clock), log.options.limits) for i in range(1, 4)]

    async def committed() -> list[int]:
        receipts = [log.append_prepared(p) for p in prepared]
        return [await r.committed() for r in receipts]

    assert asyncio.run(committed()) == [1, 2, 3]
    store = AuditStore(engine)
    for seq in (1, 2, 3):
        stored = store.leaf(seq)
        assert stored is not None
        assert stored[0] == prepare(sample(seq, clock)).canonical(seq)
        assert stored[1] == leaf_hash(stored[0])


def test_a_companion_row_is_committed_with_its_event_or_neither_is(
    open_log: OpenLog, engine: Engine, clock: FakeClock
) -> None:
    log = open_log()
    (ok,) = IngestStore(engine).key_rows(["k0"], "src", clock.now())  # a table with a seq column
    assert log.append_prepared(prepare(sample(0, clock)), ok).seq(timeout=30) == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT key, source, seq FROM ingest_imported")).all() == [("k0", "src", 0)]
    broken = Companion("no_such_table", ("x",), (1,))
    with pytest.raises(AuditUnavailable):
        log.append_prepared(prepare(sample(1, clock)), broken).seq(timeout=30)
    assert log.append(sample(2, clock)).seq(timeout=30) == 1  # the event of the refused batch was not recorded
