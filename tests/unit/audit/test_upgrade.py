"""Migration 0010 on a log that already holds events: the flat search indexes become the
bucketed ones, and search finds what it found before, on both backends."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, inspect

from pacsguard.audit import AuditLog, AuditQuery, verify
from pacsguard.clock import FakeClock
from pacsguard.domain.events import Actor, ObjectRef
from pacsguard.storage import make_engine, migrate
from pacsguard.storage.audit_tables import SEARCH_BUCKET_BITS
from tests.postgres import PostgresServer
from tests.unit.audit.conftest import sample

_names = itertools.count()
OFFICER = Actor("officer", ("privacy-officer",))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def before_0010(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """An empty database migrated as far as 0009_audit_prune (the audit tables before 0010)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('upgrade') / 'old.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_database(f"upgrade_{next(_names)}")
    engine = make_engine(url)
    migrate(engine, "0009_audit_prune")
    yield engine
    engine.dispose()


def test_a_filled_log_is_upgraded_and_searched_as_before(before_0010: Engine, clock: FakeClock) -> None:
    engine = before_0010
    indexes = {i["name"] for i in inspect(engine).get_indexes("audit_events")}
    assert "ix_audit_events_patient_seq" in indexes
    n = 2**SEARCH_BUCKET_BITS + 300
    rare = [i for i in range(n) if i % 5001 == 7]
    with AuditLog(engine, signing_key=None, clock=clock) as log:
        receipts = [
            log.append(sample(i, clock, objects=ObjectRef(patient_id="P-rare" if i in rare else f"P{i % 50}")))
            for i in range(n)
        ]
        assert receipts[-1].seq(timeout=120) == n - 1
        before = log.search(AuditQuery(patient="P-rare", limit=100), reader=OFFICER)
    assert [e.seq for e in before.events] == rare

    migrate(engine)

    with engine.connect() as conn:
        names = {row[0] for row in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_events'"
            if engine.dialect.name == "sqlite"
            else "SELECT indexname FROM pg_indexes WHERE tablename = 'audit_events'"
        )}  # fmt: skip
    assert {f"ix_audit_events_{k}_bucket" for k in ("patient", "principal", "study")} <= names
    assert not any(name.endswith("_seq") for name in names)
    with AuditLog(engine, signing_key=None, clock=clock) as log:
        after = log.search(AuditQuery(patient="P-rare", limit=100), reader=OFFICER)
        assert [e.seq for e in after.events] == rare
        assert [e.seq for e in log.search(AuditQuery(actor="user1", limit=3), reader=OFFICER).events] == [1, 5, 9]
    assert verify(engine, None).ok
