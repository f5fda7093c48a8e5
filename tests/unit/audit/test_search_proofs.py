"""Search with keyset pagination (itself audited), and proofs an auditor checks offline."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, event

from pacsguard.audit import AuditQuery, check_consistency, check_inclusion, merkle, verify_head
from pacsguard.audit.heads import SignedHead
from pacsguard.audit.proofs import consistency, inclusion
from pacsguard.clock import FakeClock
from pacsguard.domain.events import Actor, ObjectRef, Outcome
from pacsguard.errors import AuditError
from pacsguard.storage.audit_tables import SEARCH_BUCKET_BITS
from tests.unit.audit.conftest import OpenLog, fill, sample

OFFICER = Actor("officer", ("privacy-officer",), ip="10.9.9.9")


def test_who_accessed_this_patient_pages_through_matches(open_log: OpenLog, clock: FakeClock) -> None:
    log = open_log()
    fill(log, clock, 60)
    seen: list[int] = []
    after = None
    while True:
        page = log.search(AuditQuery(patient="P3", after_seq=after, limit=3), reader=OFFICER)
        seen += [e.seq for e in page.events if e.seq is not None]
        assert all(e.objects.patient_id == "P3" for e in page.events)
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == [i for i in range(60) if i % 7 == 3]


def test_filters_combine(open_log: OpenLog, clock: FakeClock) -> None:
    log = open_log()
    fill(log, clock, 30)
    log.emit(sample(30, clock, outcome=Outcome.DENIED, type="access.denied"))
    page = log.search(AuditQuery(actor="user1", types=("study.read",), ip="10.0.0.1", limit=100), reader=OFFICER)
    assert [e.seq for e in page.events] == [i for i in range(30) if i % 4 == 1 and i % 5 == 1 and i % 3]
    denied = log.search(AuditQuery(outcome=Outcome.DENIED), reader=OFFICER)
    assert [e.type for e in denied.events] == ["access.denied"]
    window = log.search(
        AuditQuery(since=clock.now() + timedelta(seconds=5), until=clock.now() + timedelta(seconds=8)),
        reader=OFFICER,
    )
    assert [e.seq for e in window.events] == [5, 6, 7]
    assert log.search(AuditQuery(study="1.2.840.12"), reader=OFFICER).events[0].seq == 12


def test_every_search_is_recorded_as_audit_log_used(open_log: OpenLog, clock: FakeClock) -> None:
    log = open_log()
    fill(log, clock, 5)
    log.search(AuditQuery(patient="P1"), reader=OFFICER)
    used = log.search(AuditQuery(types=("audit.log.used",)), reader=OFFICER).events
    assert len(used) == 2
    assert used[0].actor == OFFICER
    assert used[0].detail["query"] == {"patient": "P1", "limit": 100}


def test_a_search_pages_across_buckets_and_skips_those_without_the_key(
    open_log: OpenLog, engine: Engine, clock: FakeClock
) -> None:
    """One patient's events in search buckets 0 and 2 (none in 1), paged with a cursor
    inside a bucket: after the empty bucket the search asks which buckets hold the key,
    on the bucket index."""
    log = open_log()
    width = 2**SEARCH_BUCKET_BITS
    n = 2 * width + 50
    expected = [5, 4104, 8203, 2 * width + 2, 2 * width + 30]
    rare = set(expected)
    receipts = [
        log.append(sample(i, clock, objects=ObjectRef(patient_id="P-rare" if i in rare else "P"))) for i in range(n)
    ]
    assert receipts[-1].result(timeout=120).seq == n - 1
    asked: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if "EXISTS" in statement.upper():
            asked.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        seen: list[int] = []
        after = None
        while True:
            page = log.search(AuditQuery(patient="P-rare", after_seq=after, limit=2), reader=OFFICER)
            seen += [e.seq for e in page.events if e.seq is not None]
            if page.next_after is None:
                break
            after = page.next_after
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert seen == expected
    page = log.search(AuditQuery(patient="P-rare", after_seq=expected[1], limit=100), reader=OFFICER)
    assert [e.seq for e in page.events] == expected[2:]
    assert asked  # bucket 1 came back empty: the search asked which buckets hold the key
    statement, parameters = asked[0]
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            plan = " ".join(str(r) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))
        else:
            conn.exec_driver_sql("SET enable_seqscan = off")
            plan = " ".join(str(r) for r in conn.exec_driver_sql("EXPLAIN " + statement, parameters))
    assert "ix_audit_events_patient_bucket" in plan, plan


def test_key_searches_on_an_empty_log_or_past_its_end_find_nothing(open_log: OpenLog, clock: FakeClock) -> None:
    log = open_log()
    # the search's own audit.log.used record is the only event: it has no patient
    assert log.search(AuditQuery(patient="P1"), reader=OFFICER).events == ()
    fill(log, clock, 10)
    page = log.search(AuditQuery(patient="P1", after_seq=10**9), reader=OFFICER)
    assert (page.events, page.next_after) == ((), None)
    assert [e.seq for e in log.search(AuditQuery(patient="P1", after_seq=-5), reader=OFFICER).events] == [2, 9]


@pytest.mark.parametrize(("key", "value"), [("patient", "P1"), ("actor", "user1"), ("study", "1.2.840.3")])
def test_key_searches_use_their_bucket_index(
    open_log: OpenLog, engine: Engine, clock: FakeClock, key: str, value: str
) -> None:
    """The statements the search really sends are planned on the key's bucket index."""
    log = open_log()
    fill(log, clock, 5)
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if "canonical" in statement and "LIMIT" in statement.upper():
            sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        query: dict[str, Any] = {key: value}
        assert log.search(AuditQuery(**query), reader=OFFICER).events
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert sent
    index = {"patient": "patient", "actor": "principal", "study": "study"}[key]
    for statement, parameters in sent:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            else:
                conn.exec_driver_sql("SET enable_seqscan = off")
                rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters)
            plan = " ".join(str(r) for r in rows)
        assert f"ix_audit_events_{index}_bucket" in plan, plan
        assert "TEMP B-TREE" not in plan, plan  # SQLite: the index gives the order
        assert "Sort" not in plan, plan  # PostgreSQL: likewise


def test_inclusion_proofs_check_offline_against_the_signed_head(
    open_log: OpenLog, engine: Engine, clock: FakeClock, signing_key: Ed25519PrivateKey
) -> None:
    log = open_log()
    fill(log, clock, 23)
    head = log.sign_head()
    for seq in (0, 7, 22):
        proof = json.loads(json.dumps(inclusion(engine, seq).to_json()))
        assert proof["size"] == 23
        assert check_inclusion(proof)
        kept = SignedHead.from_json(proof["head"])
        assert verify_head(kept, signing_key.public_key())
        assert kept.root_hash.hex() == proof["root_hash"] == head.root_hash.hex()
        forged = {**proof, "event": proof["event"].replace("study", "stody")}
        assert not check_inclusion(forged)
    with pytest.raises(AuditError, match="no event 99"):
        inclusion(engine, 99)


def test_consistency_proofs_between_heads(open_log: OpenLog, engine: Engine, clock: FakeClock) -> None:
    log = open_log()
    fill(log, clock, 9)
    old = log.sign_head()
    fill(log, clock, 14)
    new = log.sign_head()
    proof = consistency(engine, old.size, new.size).to_json()
    assert proof["old_root_hash"] == old.root_hash.hex()
    assert proof["new_root_hash"] == new.root_hash.hex()
    assert check_consistency(proof)
    assert merkle.verify_consistency(
        old.size, new.size, old.root_hash, new.root_hash, [bytes.fromhex(p) for p in proof["path"]]
    )
    assert not check_consistency({**proof, "old_size": 8})
    with pytest.raises(AuditError, match="need 0 < OLD <= NEW"):
        consistency(engine, 5, 500)


def test_a_proof_needs_a_covering_head(open_log: OpenLog, engine: Engine, clock: FakeClock) -> None:
    log = open_log(signing_key=None)
    fill(log, clock, 3)
    with pytest.raises(AuditError, match="sign-head"):
        inclusion(engine, 1)
    assert check_inclusion(inclusion(engine, 1, size=3).to_json())
