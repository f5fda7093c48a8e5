"""Archive segments: written from the log, checked offline against the signed head, tamper found."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from pacsguard.audit import AuditOptions, merkle
from pacsguard.audit._rowcheck import subtree_levels
from pacsguard.audit.archive import archive_segments, verify_segments
from pacsguard.audit.canonical import canonical_bytes
from pacsguard.audit.store import AuditStore
from pacsguard.cli import main
from pacsguard.clock import FakeClock
from pacsguard.errors import AuditError
from tests.unit.audit.conftest import OpenLog, fill


@pytest.fixture
def archived(
    open_log: OpenLog, engine: Engine, clock: FakeClock, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> Path:
    """20 events, a head at 20, and the segments [0, 8) and [8, 16) written."""
    log = open_log()
    recorded = fill(log, clock, 20)
    log.sign_head()
    written = archive_segments(engine, 19, tmp_path, signing_key, level=3)
    assert [(s.first, s.end) for s in written] == [(0, 8), (8, 16)]
    lines = written[1].events.read_bytes().splitlines()
    assert lines == [canonical_bytes(e) for e in recorded[8:16]]
    manifest = json.loads(written[1].manifest.read_text())
    assert bytes.fromhex(manifest["root_hash"]) == AuditStore(engine).prove(lambda get: get(3, 1))
    assert manifest["head"]["size"] == 20
    return tmp_path


def test_segments_verify_against_the_signed_head(archived: Path, signing_key: Ed25519PrivateKey) -> None:
    assert verify_segments(archived, signing_key.public_key()) == []


def test_another_key_is_refused(archived: Path) -> None:
    findings = verify_segments(archived, Ed25519PrivateKey.generate().public_key())
    assert [(f.seq, f.kind) for f in findings] == [(0, "head"), (8, "head")]


def test_an_edited_event_is_found(archived: Path, signing_key: Ed25519PrivateKey) -> None:
    events = archived / "segment-000000000008-000000000016.jsonl"
    events.write_bytes(events.read_bytes().replace(b"user1", b"user9", 1))
    findings = verify_segments(archived, signing_key.public_key())
    assert [(f.seq, f.kind) for f in findings] == [(8, "altered")]


def test_an_edited_manifest_is_found(archived: Path, signing_key: Ed25519PrivateKey) -> None:
    path = archived / "segment-000000000000-000000000008.manifest.json"
    manifest = json.loads(path.read_text())
    manifest["path"][0] = "00" * 32
    path.write_text(json.dumps(manifest))
    findings = verify_segments(archived, signing_key.public_key())
    assert [(f.seq, f.kind) for f in findings] == [(0, "head")]
    path.write_text("{not json")
    assert [f.kind for f in verify_segments(archived, signing_key.public_key())] == ["unreadable"]


def test_nothing_to_archive_or_no_head(
    open_log: OpenLog, engine: Engine, clock: FakeClock, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    log = open_log(options=AuditOptions(head_every_events=1000, head_every_seconds=3600))
    fill(log, clock, 10)
    with pytest.raises(AuditError, match="no whole segment"):
        archive_segments(engine, 7, tmp_path, signing_key, level=3)
    with pytest.raises(AuditError, match="no signed head covers"):
        archive_segments(engine, 8, tmp_path, signing_key, level=3)
    assert verify_segments(tmp_path, signing_key.public_key())[0].kind == "missing"


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 70), st.integers(0, 4), st.data())
def test_a_whole_subtree_is_proved_in_any_larger_tree(size: int, level: int, data: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(b"%d" % i) for i in range(size)]
    if size < 1 << level:
        return
    index = data.draw(st.integers(0, (size >> level) - 1))
    edge = merkle.RightEdge()
    nodes: dict[tuple[int, int], bytes] = {(0, i): h for i, h in enumerate(leaves)}
    for h in leaves:
        nodes.update({(lv, ix): n for lv, ix, n in edge.append(h)})
    first = index << level
    joined = b"".join(leaves[first : first + (1 << level)])
    root = subtree_levels(joined, level)[-1] if level else joined
    assert root == nodes[level, index]
    path = merkle.inclusion_proof(first, size, lambda lv, ix: nodes[lv, ix])[level:]
    units = -(-size // (1 << level))
    assert merkle.verify_inclusion(root, index, units, path, edge.root())
    flipped = bytes([root[0] ^ 1]) + root[1:]
    assert not merkle.verify_inclusion(flipped, index, units, path, edge.root())


def test_cli_archive_then_verify_segments(
    logged_site: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = logged_site(12)
    out_dir = tmp_path / "segments"
    archive = ["audit", "archive", "--site", str(site), "--output", str(out_dir)]
    assert main([*archive, "--before", "9", "--level", "2"]) == 0
    assert "archived events 0..7 in 2 segments" in capsys.readouterr().out
    assert main(["audit", "verify", "--site", str(site), "--segments", str(out_dir)]) == 0
    assert "2 archive segments verify" in capsys.readouterr().out
    assert main([*archive, "--before", "yesterday"]) == 2
    (out_dir / "segment-000000000004-000000000008.jsonl").write_bytes(b"{}\n" * 4)
    assert main(["audit", "verify", "--site", str(site), "--segments", str(out_dir)]) == 1
