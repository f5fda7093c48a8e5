"""Ingest benchmark: ATNA messages over TLS made durable, JSONL import, rsyslog as the peer.

    .venv/bin/python bench/ingest/run.py            # 20,000 messages, 50,000 JSONL events
    .venv/bin/python bench/ingest/run.py --quick    # 2,000 and 5,000, for a smoke run

One run prints three measures on one table:

1. DICOM PS3.15 A.5 XML messages (RFC 5424 records, octet-counted) sent over TLS by a
   separate sender process (bench/ingest/sender.py, several connections, client
   certificate) to pacsguard's receiver: messages/s received (framed and queued) and
   made durable (parsed and committed) in the site's audit log (SQLite, WAL,
   synchronous=FULL), and this process's CPU time per message. The same run against a
   receiver whose log is a no-op shows what parsing alone allows, so the table says
   which part limits.
2. ``audit import`` of pacsguard's own JSONL export into a fresh site: events/s (and the
   same with a no-op log: parsing, keys and the duplicate check alone).
3. The peer: Debian's rsyslog receiving the very same TLS stream (imtcp, gtls driver,
   client certificates required) into a plain file (omfile); its receive rate.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pacsguard import config  # noqa: E402
from pacsguard.app import open_site  # noqa: E402
from pacsguard.audit.export_dicom import AuditSource  # noqa: E402
from pacsguard.audit.export_files import write_jsonl  # noqa: E402
from pacsguard.audit.syslog import frame, syslog_record  # noqa: E402
from pacsguard.cli import main as cli  # noqa: E402
from pacsguard.collector import few_collections  # noqa: E402
from pacsguard.domain import Actor, AuditEvent, ObjectRef  # noqa: E402
from pacsguard.ingest import IngestStore, Receiver, ReceiverOptions, ReceiverThread, SyslogServer  # noqa: E402
from pacsguard.ingest.importer import Importer  # noqa: E402
from pacsguard.ingest.syslog_server import server_tls_context  # noqa: E402
from pacsguard.pki import issue_client, load_ca  # noqa: E402

console = Console()
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
TYPES = ("study.read", "study.query", "login.success", "study.store", "study.export")
DEADLINE = 600.0


def events(n: int) -> list[AuditEvent]:
    return [
        AuditEvent(
            type=TYPES[i % len(TYPES)],
            occurred_at=START + timedelta(milliseconds=137 * i),
            actor=Actor(f"user{i % 300}", ip=f"10.0.{i % 7}.{i % 250}", ae_title=f"WS{i % 40}"),
            objects=ObjectRef(patient_id=f"P{i % 5000}", study_uid=f"1.2.826.0.1.3680043.8.498.{i}", count=i % 90),
            seq=i,
        )
        for i in range(n)
    ]


@dataclass
class Pki:
    ca: Path
    server: tuple[Path, Path]
    client: tuple[Path, Path]


def make_site(root: Path) -> tuple[Path, Pki]:
    site = root / "site"
    assert cli(["init", str(site)]) == 0
    assert cli(["pki", "init", "--site", str(site)]) == 0
    ca = load_ca(site / "pki" / "ca.pem", site / "pki" / "ca-key.pem")
    issued = issue_client(ca, datetime.now(UTC), "bench-sender", ae_title="BENCH")
    client = (root / "client.pem", root / "client-key.pem")
    issued.write(*client)
    pki = Pki(site / "pki" / "ca.pem", (site / "pki" / "server.pem", site / "pki" / "server-key.pem"), client)
    return site, pki


class NullLog:
    """Takes every event at once: what the receiver does with a log that costs nothing."""

    def append(self, event: AuditEvent) -> Any:
        return _Done(event)


class _Done:
    def __init__(self, event: AuditEvent) -> None:
        self.event = event

    def __await__(self) -> Any:
        return self._now().__await__()

    async def _now(self) -> AuditEvent:
        return self.event

    def result(self, timeout: float | None = None) -> AuditEvent:
        return self.event


@dataclass
class Sent:
    seconds_to: dict[str, float] = field(default_factory=dict)
    sender_seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process (receiver, log writer, polling), all threads


def drive(port: int, pki: Pki, frames: Path, connections: int, done: dict[str, Callable[[], bool]]) -> Sent:
    """Run the sender process; time (from "go") until each ``done`` condition holds."""
    sender = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "ingest" / "sender.py"), "127.0.0.1", str(port), str(pki.ca),
         str(pki.client[0]), str(pki.client[1]), str(frames), str(connections)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert sender.stdin is not None
    assert sender.stdout is not None
    if sender.stdout.readline().strip() != "ready":
        raise SystemExit("the sender could not connect")
    result = Sent()
    start, cpu = time.perf_counter(), time.process_time()
    sender.stdin.write("go\n")
    sender.stdin.flush()
    pending = dict(done)
    while pending and time.perf_counter() - start < DEADLINE:
        for name, check in list(pending.items()):
            if check():
                result.seconds_to[name] = time.perf_counter() - start
                del pending[name]
        time.sleep(0.005)
    result.cpu_seconds = time.process_time() - cpu
    line = sender.stdout.readline().split()
    result.sender_seconds = float(line[1]) if len(line) == 2 else float("nan")
    sender.wait(timeout=60)
    return result


def receiver_run(site: Path, pki: Pki, frames: Path, n: int, connections: int, null_log: bool) -> Sent:
    settings = config.load(site)
    opened = open_site(settings)
    context = server_tls_context(*pki.server, pki.ca, require_client_cert=True)
    log: Any = NullLog() if null_log else opened.audit

    def make() -> SyslogServer:
        receiver = Receiver(log, IngestStore(opened.engine), opened.clock, ReceiverOptions(queue_size=10_000))
        return SyslogServer(receiver, tls_port=0, tls_context=context)

    thread = ReceiverThread(make)
    thread.start()
    try:
        assert thread.server is not None
        assert thread.server.tls_address is not None
        port = thread.server.tls_address[1]
        with few_collections():  # as 'pacsguard serve' runs the receiver
            return drive(port, pki, frames, connections, {
                "received": lambda: thread.stats()["received"] >= n,
                "durable": lambda: thread.stats()["durable"] >= n,
            })  # fmt: skip
    finally:
        thread.stop()
        opened.close()


def rsyslog_run(root: Path, pki: Pki, frames: Path, n: int, connections: int) -> Sent | None:
    if not Path(RSYSLOGD).exists():
        console.print("[yellow]rsyslogd not installed: no peer figure[/]")
        return None
    d = root / "rsyslog"
    d.mkdir()
    out = d / "received.log"
    port = _free_port()
    conf = d / "rsyslog.conf"
    conf.write_text(f"""
global(workDirectory="{d}" maxMessageSize="64k" defaultNetstreamDriver="gtls"
  defaultNetstreamDriverCAFile="{pki.ca}" defaultNetstreamDriverCertFile="{pki.server[0]}"
  defaultNetstreamDriverKeyFile="{pki.server[1]}")
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="x509/certvalid")
input(type="imtcp" port="{port}" address="127.0.0.1")
action(type="omfile" file="{out}" template="RSYSLOG_FileFormat")
""")
    process = subprocess.Popen([RSYSLOGD, "-n", "-f", str(conf), "-i", str(d / "pid")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        _wait_listening(port)

        def lines() -> bool:
            try:
                with out.open("rb") as f:
                    return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b"")) >= n
            except OSError:
                return False

        return drive(port, pki, frames, connections, {"written": lines})
    finally:
        process.terminate()
        process.wait(timeout=30)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int) -> None:
    import socket

    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("rsyslogd did not listen")


class NumberingLog(NullLog):
    """A no-op log that numbers events as the real one does, so that the import records
    their keys (it records only events that got a ``seq``): the import's whole own cost."""

    def __init__(self) -> None:
        self.size = 0

    def append(self, event: AuditEvent) -> Any:
        self.size += 1
        return _Done(replace(event, seq=self.size - 1))


def import_run(root: Path, name: str, jsonl: Path, null_log: bool) -> tuple[float, int]:
    """Import ``jsonl`` into a fresh site; prints the CPU time per event (all threads, the
    audit writer's included), which moves less than the rate on a shared machine."""
    site = root / name
    assert cli(["init", str(site)]) == 0
    opened = open_site(config.load(site))
    try:
        log: Any = NumberingLog() if null_log else opened.audit
        importer = Importer(log, IngestStore(opened.engine), opened.clock, source="bench")
        start, cpu = time.perf_counter(), time.process_time()
        importer.import_file(jsonl, "jsonl")
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        n = importer.report.imported
        console.print(f"audit import, {'no-op' if null_log else 'real'} log: {n:,} events, CPU "
                      f"{cpu / max(n, 1) * 1e6:.1f} µs/event; load average {os.getloadavg()[0]:.2f}")  # fmt: skip
        return seconds, n
    finally:
        opened.close()


def rate(n: int, seconds: float | None) -> str:
    return f"{n / seconds:,.0f}/s" if seconds else "—"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    n = 2_000 if args.quick else 20_000
    m = 5_000 if args.quick else 50_000
    console.print(f"load average before: {os.getloadavg()}; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="pacsguard-bench-ingest-") as tmp:
        root = Path(tmp)
        site, pki = make_site(root)
        frames = root / "frames.bin"
        source = AuditSource("BENCH-PACS")
        data = b"".join(frame(syslog_record(e, hostname="pacs1", source=source)) for e in events(n))
        frames.write_bytes(data)
        console.print(f"{n:,} DICOM XML messages, {len(data) / n:,.0f} bytes each on average, "
                      f"{args.connections} TLS connections")  # fmt: skip
        real = receiver_run(site, pki, frames, n, args.connections, null_log=False)
        null_site, _ = root / "null", None
        shutil.copytree(site, null_site)
        null = receiver_run(null_site, pki, frames, n, args.connections, null_log=True)
        peer = rsyslog_run(root, pki, frames, n, args.connections)

        jsonl = root / "export.jsonl"
        with jsonl.open("w") as out:
            write_jsonl(events(m), out)
        imported_s, imported = import_run(root, "import-site", jsonl, null_log=False)
        parse_s, parsed = import_run(root, "import-null", jsonl, null_log=True)

    table = Table(title="pacsguard ingest (one run)")
    for column in ("measure", "count", "seconds", "rate"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    rec, dur = real.seconds_to.get("received"), real.seconds_to.get("durable")
    table.add_row("TLS → received (framed, queued), real log", f"{n:,}", f"{rec or 0:.2f}", rate(n, rec))
    table.add_row("TLS → durable in the audit log", f"{n:,}", f"{dur or 0:.2f}", rate(n, dur))
    nd = null.seconds_to.get("durable")
    table.add_row("TLS → parsed, no-op log (receiver alone)", f"{n:,}", f"{nd or 0:.2f}", rate(n, nd))
    if peer is not None:
        w = peer.seconds_to.get("written")
        table.add_row("peer: rsyslog TLS → plain file", f"{n:,}", f"{w or 0:.2f}", rate(n, w))
    table.add_row("audit import of JSONL (durable)", f"{imported:,}", f"{imported_s:.2f}", rate(imported, imported_s))
    table.add_row("audit import of JSONL, no-op log", f"{parsed:,}", f"{parse_s:.2f}", rate(parsed, parse_s))
    console.print(table)
    console.print(f"CPU of this process per TLS message (receiver, log writer, polling): real log "
                  f"{real.cpu_seconds / n * 1e6:,.0f} µs, no-op log {null.cpu_seconds / n * 1e6:,.0f} µs")  # fmt: skip
    console.print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
