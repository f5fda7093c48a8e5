"""The ingest tables: the migration matches them; the quarantine is bounded; keys are unique."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, MetaData, inspect, select

from pacsguard.audit.canonical import prepare
from pacsguard.audit.log import AuditLog
from pacsguard.clock import FakeClock
from pacsguard.ingest import IngestStore, Quarantined
from pacsguard.storage import metadata
from pacsguard.storage.ingest_tables import INGEST_TABLES
from pacsguard.storage.ingest_tables import ingest_imported as ti
from tests.unit.audit.export_samples import sample

MINE = {t.name for t in INGEST_TABLES}


def _only_mine(name: str | None, type_: str, _parents: object) -> bool:
    return type_ != "table" or name in MINE


def test_migrated_schema_matches_the_metadata(engine: Engine) -> None:
    assert set(inspect(engine).get_table_names()) >= MINE
    mine = MetaData(naming_convention=metadata.naming_convention)
    for table in INGEST_TABLES:
        table.to_metadata(mine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": _only_mine})
        assert compare_metadata(context, mine) == []


def test_the_quarantine_keeps_the_newest_rows_and_bounded_bytes(engine: Engine, clock: FakeClock) -> None:
    store = IngestStore(engine, keep_rows=3, keep_bytes=10)
    for i in range(5):
        store.quarantine(Quarantined(clock.now(), "udp", "bad-xml", f"message {i}", 100, b"x" * 100, "1.2.3.4:5"))
    rows = store.quarantined()
    assert [r.message for r in rows] == ["message 4", "message 3", "message 2"]
    assert {len(r.raw) for r in rows} == {10}
    assert {r.size for r in rows} == {100}
    assert store.quarantine_count() == 3


def _key_log(engine: Engine, clock: FakeClock) -> AuditLog:
    return AuditLog(engine, signing_key=None, clock=clock)


def test_import_keys_are_committed_with_their_events_and_a_repeated_one_is_skipped(
    engine: Engine, clock: FakeClock
) -> None:
    store = IngestStore(engine)
    with _key_log(engine, clock) as log:
        rows = store.key_rows(["k1", "k2", "k1"], "src", clock.now())
        seqs = [
            log.append_prepared(prepare(sample("study.read", i)), row).seq(timeout=30) for i, row in enumerate(rows)
        ]
    assert seqs == [0, 1, 2]  # the events are all recorded; the key keeps its first seq
    assert store.known(["k1", "k3", "k2"]) == {"k1", "k2"}
    with engine.connect() as conn:
        assert conn.execute(select(ti.c.key, ti.c.seq).order_by(ti.c.seq)).all() == [("k1", 0), ("k2", 1)]


def test_many_keys_are_recorded_with_their_seq_and_time(engine: Engine, clock: FakeClock) -> None:
    store = IngestStore(engine)
    keys = [f"{i:064x}" for i in range(1201)]  # several multi-row INSERTs in one commit
    with _key_log(engine, clock) as log:
        receipts = [
            log.append_prepared(prepare(sample("study.read", i)), row)
            for i, row in enumerate(store.key_rows(keys, "src", clock.now()))
        ]
        assert [r.seq(timeout=30) for r in receipts] == list(range(1201))
    assert store.known([*keys, "absent"]) == set(keys)
    with engine.connect() as conn:
        rows = conn.execute(select(ti.c.key, ti.c.source, ti.c.seq, ti.c.imported_at).order_by(ti.c.seq)).all()
    assert [(r.key, r.source, r.seq) for r in rows] == [(key, "src", seq) for seq, key in enumerate(keys)]
    assert {r.imported_at.replace(tzinfo=None) for r in rows} == {clock.now().replace(tzinfo=None)}
