"""kill -9 ``pacsguard audit import`` mid-file, twice, then run it to the end: every event of
the file is in the log exactly once, each with its key, and the log verifies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select

from pacsguard import config
from pacsguard.app import open_site
from pacsguard.audit import decode
from pacsguard.audit.export_files import write_jsonl
from pacsguard.cli import main
from pacsguard.storage import make_engine
from pacsguard.storage.audit_tables import audit_events
from pacsguard.storage.ingest_tables import ingest_imported
from tests.unit.audit.export_samples import sample

EVENTS = 30_000
TYPES = ("study.read", "study.query", "login.success", "study.export")


def _count(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(audit_events)).scalar_one())
    finally:
        engine.dispose()


def _import_and_kill(site: Path, path: Path, url: str, kill_after: int) -> None:
    """Run the import as a process of its own; SIGKILL it once the log holds ``kill_after`` events."""
    command = [
        sys.executable,
        "-m",
        "pacsguard",
        "audit",
        "import",
        str(path),
        "--format",
        "jsonl",
        "--site",
        str(site),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while process.poll() is None and time.monotonic() < deadline and _count(url) < kill_after:
            time.sleep(0.02)
        assert process.poll() is None, "the import ended before it could be killed: make the file longer"
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=60)


def test_an_import_killed_twice_then_rerun_records_each_event_once(
    make_site: Callable[..., Path], tmp_path: Path
) -> None:
    site = make_site()
    path = tmp_path / "history.jsonl"
    with path.open("w") as out:
        write_jsonl([sample(TYPES[i % len(TYPES)], i) for i in range(EVENTS)], out)
    settings = config.load(site)
    with open_site(settings) as opened:
        url = opened.engine.url.render_as_string(hide_password=False)
    _import_and_kill(site, path, url, kill_after=2_500)
    _import_and_kill(site, path, url, kill_after=_count(url) + 5_000)
    assert 0 < _count(url) < EVENTS
    assert main(["audit", "import", str(path), "--format", "jsonl", "--site", str(site)]) == 0

    with open_site(settings) as opened, opened.engine.connect() as conn:
        rows = conn.execute(select(audit_events.c.seq, audit_events.c.canonical).order_by(audit_events.c.seq)).all()
        keyed = dict(conn.execute(select(ingest_imported.c.seq, ingest_imported.c.key)).all())
    imported = {}
    for seq, canonical in rows:
        detail = decode(bytes(canonical)).detail
        if "ingest" in detail:
            imported[seq] = json.loads(json.dumps(detail["ingest"]))["message_id"]
    counts = Counter(imported.values())
    assert sorted(int(m) for m in counts) == list(range(EVENTS))  # every event of the file is there
    assert max(counts.values()) == 1  # and none twice
    assert set(keyed) == set(imported)  # each with its key, and no key without its event
    assert main(["audit", "verify", "--site", str(site)]) == 0
