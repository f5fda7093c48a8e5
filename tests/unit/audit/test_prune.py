"""Retention by deletion: prune exported, verified segments; the tree, the heads and the proofs stay valid."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError

from pacsguard.audit import AuditLog, merkle, verify
from pacsguard.audit.archive import archive_segments
from pacsguard.audit.proofs import check_consistency, check_inclusion, consistency, inclusion
from pacsguard.audit.prune import check_pruned_files, prune
from pacsguard.audit.reader import LogReader
from pacsguard.audit.store import AuditStore
from pacsguard.cli import main
from pacsguard.clock import FakeClock
from pacsguard.domain.events import AuditEvent, JsonValue
from pacsguard.errors import AuditError, AuditIntegrityError
from pacsguard.storage import make_engine, migrate
from pacsguard.storage.audit_tables import audit_events
from tests.unit.audit.conftest import OpenLog, fill

SEGMENT_0, SEGMENT_1 = "segment-000000000000-000000000008", "segment-000000000008-000000000016"


@pytest.fixture
def log(open_log: OpenLog, clock: FakeClock) -> AuditLog:
    """20 events, heads every 5 events and at 20."""
    opened = open_log()
    fill(opened, clock, 20)
    opened.sign_head()
    return opened


@pytest.fixture
def archived(log: AuditLog, engine: Engine, signing_key: Ed25519PrivateKey, tmp_path: Path) -> Path:
    """The segments [0, 8) and [8, 16) written."""
    archive_segments(engine, 19, tmp_path, signing_key, level=3)
    return tmp_path


def prune_now(engine: Engine, before: int, directory: Path, key: Ed25519PrivateKey, log: AuditLog) -> list[int]:
    """Prune through ``log`` (which records the event); the pruned ranges' first seqs."""

    def record(detail: dict[str, JsonValue]) -> None:
        log.emit(AuditEvent("audit.pruned", log.clock.now(), detail=detail))

    done = prune(engine, before, directory, key.public_key(), now=log.clock.now(), record=record)
    return [p.first for p in done]


def stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(audit_events)).scalar_one())


def test_prune_deletes_the_rows_and_verify_still_passes(
    log: AuditLog, engine: Engine, archived: Path, signing_key: Ed25519PrivateKey
) -> None:
    root = log.root()
    assert prune_now(engine, 16, archived, signing_key, log) == [0, 8]
    assert stored(engine) == 5  # events 16..19 and the audit.pruned event (seq 20)
    recorded = LogReader(engine).events_after(19)
    assert [e.type for e in recorded] == ["audit.pruned"]
    assert recorded[0].detail["pruned"] == {"first": 0, "end": 16}
    report = verify(engine, signing_key.public_key())
    assert report.ok, report.findings
    assert (report.size, [p.file for p in report.pruned]) == (21, [f"{SEGMENT_0}.jsonl", f"{SEGMENT_1}.jsonl"])
    assert AuditStore(engine).prove(lambda get: merkle.subtree_hash(0, 20, get)) == root
    assert check_pruned_files(engine, archived) == []


def test_proofs_of_retained_events_still_verify_against_old_heads(
    log: AuditLog, engine: Engine, archived: Path, signing_key: Ed25519PrivateKey
) -> None:
    before = inclusion(engine, 17).to_json()
    prune_now(engine, 16, archived, signing_key, log)
    for seq, size in [(17, 20), (16, 20), (18, None)]:
        proof = inclusion(engine, seq, size)
        assert check_inclusion(proof.to_json())
    assert inclusion(engine, 17).to_json() == before
    assert check_consistency(consistency(engine, 5, 20).to_json())
    assert check_consistency(consistency(engine, 10, 21).to_json())
    with pytest.raises(AuditError, match=f"event 3 was pruned.*{SEGMENT_0}"):
        inclusion(engine, 3)


def test_the_writer_continues_after_a_prune(
    log: AuditLog, engine: Engine, archived: Path, signing_key: Ed25519PrivateKey, open_log: OpenLog, clock: FakeClock
) -> None:
    prune_now(engine, 16, archived, signing_key, log)
    log.close()
    reopened = open_log()
    assert reopened.size == 21
    fill(reopened, clock, 3)
    reopened.sign_head()
    assert verify(engine, signing_key.public_key()).ok


def test_prune_refuses_an_unexported_range(
    log: AuditLog, engine: Engine, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    with pytest.raises(AuditError, match="no exported segment starts at event 0"):
        prune_now(engine, 16, tmp_path, signing_key, log)
    archive_segments(engine, 19, tmp_path, signing_key, level=3)
    (tmp_path / f"{SEGMENT_0}.manifest.json").unlink()
    with pytest.raises(AuditError, match="no exported segment starts at event 0"):
        prune_now(engine, 16, tmp_path, signing_key, log)  # [8, 16) alone would leave a hole
    assert stored(engine) == 20


def test_prune_refuses_an_altered_segment_file(
    log: AuditLog, engine: Engine, archived: Path, signing_key: Ed25519PrivateKey
) -> None:
    events = archived / f"{SEGMENT_1}.jsonl"
    events.write_bytes(events.read_bytes().replace(b"user1", b"user9", 1))
    with pytest.raises(AuditIntegrityError, match="nothing was pruned"):
        prune_now(engine, 16, archived, signing_key, log)
    assert stored(engine) == 20
    assert AuditStore(engine).pruned() == []


def test_prune_refuses_segments_of_another_log(
    log: AuditLog, engine: Engine, archived: Path, signing_key: Ed25519PrivateKey, tmp_path: Path, clock: FakeClock
) -> None:
    other = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    migrate(other)
    with AuditLog(other, signing_key=signing_key, clock=clock) as elsewhere:
        fill(elsewhere, clock, 3)  # different events, same key
        fill(elsewhere, clock, 17)
        elsewhere.sign_head()
    archive_segments(other, 16, tmp_path / "other", signing_key, level=3)
    other.dispose()
    with pytest.raises(AuditIntegrityError, match=r"does not hold the log's events 0\.\.7"):
        prune_now(engine, 16, tmp_path / "other", signing_key, log)
    assert stored(engine) == 20


def test_prune_goes_on_from_where_it_stopped(
    log: AuditLog, engine: Engine, archived: Path, signing_key: Ed25519PrivateKey
) -> None:
    assert prune_now(engine, 10, archived, signing_key, log) == [0]
    assert prune_now(engine, 16, archived, signing_key, log) == [8]
    with pytest.raises(AuditError, match="no exported segment starts at event 16"):
        prune_now(engine, 20, archived, signing_key, log)
    assert verify(engine, signing_key.public_key()).ok


def test_a_changed_kept_leaf_or_a_missing_file_is_found(
    log: AuditLog, engine: Engine, archived: Path, signing_key: Ed25519PrivateKey
) -> None:
    prune_now(engine, 16, archived, signing_key, log)
    (archived / f"{SEGMENT_1}.jsonl").unlink()
    assert [(f.seq, f.kind) for f in check_pruned_files(engine, archived)] == [(8, "missing")]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_nodes DISABLE TRIGGER USER"))
        conn.execute(text("UPDATE audit_nodes SET hash = :h WHERE level = 0 AND idx = 5"), {"h": bytes(32)})
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_nodes ENABLE TRIGGER USER"))
    report = verify(engine, signing_key.public_key())
    assert not report.ok
    assert report.first_seq is not None
    assert report.first_seq <= 5
    assert [(f.seq, f.kind) for f in check_pruned_files(engine, archived)] == [(0, "altered"), (8, "missing")]


def test_postgres_still_refuses_deleting_retained_rows(
    log: AuditLog, engine: Engine, archived: Path, signing_key: Ed25519PrivateKey
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the guard trigger exists on PostgreSQL only")
    prune_now(engine, 16, archived, signing_key, log)
    for statement in [
        "DELETE FROM audit_events WHERE seq = 17",
        "DELETE FROM audit_prunes",
        "UPDATE audit_prunes SET id = id",
    ]:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))


def test_cli_prune_then_verify(
    logged_site: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = logged_site(12, head_every=4)
    out_dir = tmp_path / "segments"
    prune_cmd = ["audit", "prune", "--site", str(site), "--segments", str(tmp_path)]
    assert main([*prune_cmd, "--before", "8"]) == 1
    assert "no exported segment" in capsys.readouterr().err
    assert (
        main(["audit", "archive", "--site", str(site), "--output", str(out_dir), "--before", "9", "--level", "2"]) == 0
    )
    assert main(["audit", "prune", "--site", str(site), "--segments", str(out_dir), "--before", "8"]) == 0
    assert "pruned events 0..7 (2 segments" in capsys.readouterr().out
    assert main(["audit", "verify", "--site", str(site), "--segments", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "events 0..3: pruned, segment segment-000000000000-000000000004.jsonl" in out
    assert "ok:" in out
    (out_dir / "segment-000000000004-000000000008.jsonl").write_bytes(b"{}\n" * 4)
    assert main(["audit", "verify", "--site", str(site), "--segments", str(out_dir)]) == 1
