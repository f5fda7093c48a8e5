"""The tamper suite: edit the database directly, and ``verify`` names the right seq each time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from pacsguard.audit import AuditOptions, verify
from pacsguard.clock import FakeClock
from tests.unit.audit.conftest import OpenLog, fill

SIZE = 40


@pytest.fixture
def filled(open_log: OpenLog, clock: FakeClock) -> Engine:
    """A log of SIZE events with a signed head every 10 events, closed again."""
    log = open_log(options=AuditOptions(head_every_events=10, head_every_seconds=3600, max_batch=10))
    for _ in range(SIZE // 10):
        fill(log, clock, 10)
    log.sign_head()
    log.close()
    return log.store.engine


@contextmanager
def attacker(engine: Engine) -> Iterator[Connection]:
    """A connection with the append-only triggers switched off, as an attacker with DBA rights would."""
    postgres = engine.dialect.name == "postgresql"
    tables = ("audit_events", "audit_nodes", "audit_heads")
    with engine.begin() as conn:
        for table in tables if postgres else ():
            conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        yield conn
        for table in tables if postgres else ():
            conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))


def first(engine: Engine, key: Ed25519PrivateKey) -> tuple[int | None, str]:
    report = verify(engine, key.public_key())
    finding = report.first()
    return report.first_seq, finding.kind if finding else "ok"


def test_an_untouched_log_verifies(filled: Engine, signing_key: Ed25519PrivateKey) -> None:
    report = verify(filled, signing_key.public_key())
    assert report.ok, report.findings
    assert report.size == SIZE
    assert report.heads_checked >= 4


def test_a_changed_column_is_named(filled: Engine, signing_key: Ed25519PrivateKey) -> None:
    with attacker(filled) as conn:
        conn.execute(text("UPDATE audit_events SET patient_id = 'P-other' WHERE seq = 17"))
    assert first(filled, signing_key) == (17, "altered")


def test_changed_event_bytes_are_named(filled: Engine, signing_key: Ed25519PrivateKey) -> None:
    with attacker(filled) as conn:
        data = conn.execute(text("SELECT canonical FROM audit_events WHERE seq = 23")).scalar_one()
        forged = bytes(data).replace(b'"outcome":"success"', b'"outcome":"denied"')
        conn.execute(text("UPDATE audit_events SET canonical = :c WHERE seq = 23"), {"c": forged})
    assert first(filled, signing_key) == (23, "altered")


def test_a_deleted_row_is_named(filled: Engine, signing_key: Ed25519PrivateKey) -> None:
    with attacker(filled) as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq = 9"))
    assert first(filled, signing_key) == (9, "missing")


def test_swapped_rows_are_named(filled: Engine, signing_key: Ed25519PrivateKey) -> None:
    with attacker(filled) as conn:
        rows = {
            r[0]: r[1:]
            for r in conn.execute(text("SELECT seq, canonical, leaf_hash FROM audit_events WHERE seq IN (12, 31)"))
        }
        for seq, other in [(12, 31), (31, 12)]:
            conn.execute(
                text("UPDATE audit_events SET canonical = :c, leaf_hash = :h WHERE seq = :s"),
                {"c": rows[other][0], "h": rows[other][1], "s": seq},
            )
    assert first(filled, signing_key) == (12, "moved")


def test_a_truncated_tail_is_named(filled: Engine, signing_key: Ed25519PrivateKey) -> None:
    with attacker(filled) as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq >= 35"))
    assert first(filled, signing_key) == (35, "truncated")


def test_a_replaced_head_is_named(filled: Engine, signing_key: Ed25519PrivateKey) -> None:
    with attacker(filled) as conn:
        conn.execute(text("UPDATE audit_heads SET root_hash = :r WHERE size = 20"), {"r": os.urandom(32)})
    assert first(filled, signing_key) == (19, "head")


def test_a_head_signed_by_another_key_is_named(filled: Engine) -> None:
    report = verify(filled, Ed25519PrivateKey.generate().public_key())
    assert report.first_seq == 9
    assert {f.kind for f in report.findings} == {"head"}


def test_an_inserted_event_is_named(filled: Engine, signing_key: Ed25519PrivateKey) -> None:
    with attacker(filled) as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq >= 30"))
        conn.execute(text("DELETE FROM audit_nodes"))
    # Renumber nothing, just insert an event under an existing number's successor.
    with attacker(filled) as conn:
        row = conn.execute(text("SELECT * FROM audit_events WHERE seq = 5")).mappings().one()
        conn.execute(
            text(
                "INSERT INTO audit_events (seq, occurred_us, type, outcome, principal_id, ip, patient_id, "
                "study_uid, leaf_hash, canonical) VALUES (30, :occurred_us, :type, :outcome, :principal_id, :ip, "
                ":patient_id, :study_uid, :leaf_hash, :canonical)"
            ),
            dict(row),
        )
    assert first(filled, signing_key) == (30, "moved")


def test_a_rewritten_but_consistent_database_is_caught_by_the_heads(
    filled: Engine, signing_key: Ed25519PrivateKey, open_log: OpenLog, clock: FakeClock
) -> None:
    """An attacker rebuilds leaf hashes and nodes consistently; only the signed heads tell."""
    with attacker(filled) as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq >= 25"))
        conn.execute(text("DELETE FROM audit_nodes WHERE (idx + 1) * power(2, level) > 25"))
    log = open_log(signing_key=None)
    fill(log, clock, 15)
    log.close()
    assert first(filled, signing_key) == (20, "rewritten")


def test_garbage_rows_end_in_a_report(filled: Engine, signing_key: Ed25519PrivateKey) -> None:
    with attacker(filled) as conn:
        conn.execute(text("UPDATE audit_events SET canonical = :c WHERE seq = 3"), {"c": b"\xff\x00 not json"})
        conn.execute(text("UPDATE audit_events SET leaf_hash = :h WHERE seq = 3"), {"h": b"\x00"})
    assert first(filled, signing_key) == (3, "altered")
    with filled.begin() as conn:
        conn.execute(text("DROP TABLE audit_nodes"))
    report = verify(filled, signing_key.public_key())
    assert report.first_seq == 3


def test_missing_tables_end_in_a_report(filled: Engine, signing_key: Ed25519PrivateKey) -> None:
    with filled.begin() as conn:
        conn.execute(text("DROP TABLE audit_heads"))
    report = verify(filled, signing_key.public_key())
    assert report.first_seq == 0
    assert report.findings[0].kind == "unreadable"


def test_postgres_refuses_update_and_delete(filled: Engine) -> None:
    if filled.dialect.name != "postgresql":
        pytest.skip("the guard trigger exists on PostgreSQL only")
    for statement in [
        "UPDATE audit_events SET type = 'x' WHERE seq = 1",
        "DELETE FROM audit_events WHERE seq = 1",
        "DELETE FROM audit_heads",
        "UPDATE audit_nodes SET hash = hash",
        "TRUNCATE audit_events",
    ]:
        with pytest.raises(DBAPIError, match="append-only"), filled.begin() as conn:
            conn.execute(text(statement))


def test_worker_processes_find_the_same(filled: Engine, signing_key: Ed25519PrivateKey) -> None:
    assert verify(filled, signing_key.public_key(), workers=2).ok
    with attacker(filled) as conn:
        conn.execute(text("UPDATE audit_events SET type = 'study.delete' WHERE seq = 26"))
    report = verify(filled, signing_key.public_key(), workers=2)
    assert (report.first_seq, report.findings[0].kind) == (26, "altered")


def test_aligned_ranges_join_into_the_whole_tree() -> None:
    """Ranges checked apart (as worker processes do) give the same tree as one pass."""
    from pacsguard.audit import merkle
    from pacsguard.audit._rowcheck import CHUNK, CHUNK_LEVEL, Chunk
    from pacsguard.audit.verify import _Scan

    size = 2 * CHUNK + 12345
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    whole = merkle.RightEdge()
    stored: dict[tuple[int, int], bytes] = {}
    for leaf in leaves:
        for level, idx, h in whole.append(leaf):
            stored[level, idx] = h
    scan = _Scan()
    for lo in range(0, size, CHUNK):
        part = leaves[lo : lo + CHUNK]
        edge = merkle.RightEdge()
        nodes = [bytearray() for _ in range(CHUNK_LEVEL)]
        for leaf in part:
            for level, _idx, h in edge.append(leaf):
                nodes[level - 1] += h
        scan._add(Chunk(lo, b"".join(part), tuple(bytes(n) for n in nodes), None))
    assert scan.size == size
    assert scan.root(size) == whole.root()
    assert scan.root(CHUNK + 7) == merkle.subtree_hash(
        0, CHUNK + 7, lambda lv, i: leaves[i] if lv == 0 else stored[lv, i]
    )
    for level in range(1, len(scan.levels)):
        expected = b"".join(stored[level, i] for i in range(size >> level))
        assert scan.nodes(level) == expected


def test_search_over_a_corrupt_event_says_so(filled: Engine, open_log: OpenLog) -> None:
    from pacsguard.audit import AuditQuery
    from pacsguard.domain.events import Actor
    from pacsguard.errors import AuditIntegrityError

    with attacker(filled) as conn:
        conn.execute(text("UPDATE audit_events SET canonical = :c WHERE seq = 3"), {"c": b"junk"})
    log = open_log()
    with pytest.raises(AuditIntegrityError, match="event 3 is corrupt"):
        log.search(AuditQuery(patient="P3"), reader=Actor("officer"))


def test_a_tree_node_of_another_type_is_named(filled: Engine, signing_key: Ed25519PrivateKey) -> None:
    """A stored node that is not even bytes (SQLite keeps text in a BLOB column) is a finding, not a traceback."""
    with attacker(filled) as conn:
        conn.execute(text("UPDATE audit_nodes SET hash = 'not a hash' WHERE level = 1 AND idx = 3"))
    assert first(filled, signing_key) == (6, "node")
