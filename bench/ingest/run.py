"""Ingest benchmark: ATNA messages over TLS made durable, JSONL import, rsyslog as the peer.

    .venv/bin/python bench/ingest/run.py            # 20,000 messages, 50,000 JSONL events
    .venv/bin/python bench/ingest/run.py --quick    # 2,000 and 5,000, for a smoke run

    .venv/bin/python bench/ingest/run.py --tls-only --parse both   # TLS only: parsing processes vs in-process, A/B
    .venv/bin/python bench/ingest/run.py --tls-only --processes 1,2   # one parsing process, then two

One run prints three measures on one table:

1. DICOM PS3.15 A.5 XML messages (RFC 5424 records, octet-counted) sent over TLS by a
   separate sender process (bench/ingest/sender.py, several connections, client
   certificate) to pacsguard's receiver: messages/s received (framed and queued) and
   made durable (parsed and committed) in the site's audit log (SQLite, WAL,
   synchronous=FULL), and the CPU time per message of this process (per thread: the
   receiver's event loop, the audit writer, the rest) and of the receiver's parsing
   process. The same run against a receiver whose log is a no-op shows what the
   receiver alone allows, so the table says which part limits. ``--parse`` picks how
   the receiver parses: in its parsing processes (``process``, ``--processes`` of them,
   as ``pacsguard serve`` runs it), in this process (``inline``), or both, one after
   the other.
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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pacsguard import config  # noqa: E402
from pacsguard.app import open_site  # noqa: E402
from pacsguard.audit import AuditOptions  # noqa: E402
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

    def append_prepared(self, prepared: Any) -> Any:
        return _Done(None)


class _Done:
    def __init__(self, event: Any) -> None:
        self.event = event

    async def committed(self) -> int:
        return -1

    def __await__(self) -> Any:
        return self._now().__await__()

    async def _now(self) -> AuditEvent:
        return self.event

    def result(self, timeout: float | None = None) -> AuditEvent:
        return self.event

    def seq(self, timeout: float | None = None) -> int:
        return -1 if self.event.seq is None else self.event.seq


@dataclass
class Sent:
    seconds_to: dict[str, float] = field(default_factory=dict)
    sender_seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process (receiver, log writer, polling), all threads
    threads: dict[str, float] = field(default_factory=dict)  # CPU seconds by thread name (and "parser")
    load: float = 0.0  # the 1-minute load average at the end
    sender_cpu: float = 0.0  # CPU seconds of the sender process, all of its run (TLS setup included)


_TICK = os.sysconf("SC_CLK_TCK")


def _ticks(path: str) -> float:
    """utime + stime of a process or thread (its /proc stat file), in seconds."""
    try:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def cpu_by_thread(extra: dict[str, int | None]) -> dict[str, float]:
    """CPU seconds so far of this process's threads by name, and of the ``extra`` processes."""
    found: dict[str, float] = {}
    for thread in threading.enumerate():
        name = thread.name if thread.name in ("atna-receiver", "audit-writer") else "other"
        found[name] = found.get(name, 0.0) + _ticks(f"/proc/self/task/{thread.native_id}/stat")
    for name, pid in extra.items():
        if pid is not None:
            found[name] = _ticks(f"/proc/{pid}/stat")
    return found


def drive(
    port: int,
    pki: Pki,
    frames: Path,
    connections: int,
    done: dict[str, Callable[[], bool]],
    extra: Callable[[], dict[str, int | None]] = dict,
) -> Sent:
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
    before = cpu_by_thread(extra())
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
    after = cpu_by_thread(extra())
    result.threads = {name: seconds - before.get(name, 0.0) for name, seconds in after.items()}
    result.load = os.getloadavg()[0]
    line = sender.stdout.readline().split()
    result.sender_seconds = float(line[1]) if len(line) == 2 else float("nan")
    sender.stdin.close()
    _, status, usage = os.wait4(sender.pid, 0)  # its CPU time, from the kernel
    sender.returncode = os.waitstatus_to_exitcode(status)
    result.sender_cpu = usage.ru_utime + usage.ru_stime
    return result


def receiver_run(
    site: Path, pki: Pki, frames: Path, n: int, connections: int, null_log: bool, parse: str, processes: int
) -> Sent:
    settings = config.load(site)
    opened = open_site(settings)
    context = server_tls_context(*pki.server, pki.ca, require_client_cert=True)
    log: Any = NullLog() if null_log else opened.audit

    def make() -> SyslogServer:
        options = ReceiverOptions(queue_size=10_000)
        if parse == "inline":  # (this way the bench runs on the code before the parsing process, too)
            receiver = Receiver(log, IngestStore(opened.engine), opened.clock, options)
        else:
            from pacsguard.ingest.worker import ParserPool

            parser = ParserPool(opened.audit.options.limits, processes)
            receiver = Receiver(log, IngestStore(opened.engine), opened.clock, options, parser)
        return SyslogServer(receiver, tls_port=0, tls_context=context)

    def parser_pid() -> dict[str, int | None]:
        parser = getattr(thread.server.receiver, "parser", None) if thread.server is not None else None
        return {f"parser{i}": pid for i, pid in enumerate(parser.pids if parser is not None else [])}

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
            }, parser_pid)  # fmt: skip
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
    """A no-op log that numbers events as the real one does: the import's own cost (its
    keys are committed by the log, with the events, so this one records none)."""

    options = AuditOptions()

    def __init__(self) -> None:
        self.size = 0

    def append(self, event: AuditEvent) -> Any:
        self.size += 1
        return _Done(replace(event, seq=self.size - 1))

    def append_prepared(self, prepared: Any, companion: Any = None) -> Any:
        self.size += 1  # the import's key (``companion``) is not recorded: it is the log's work now
        return _Numbered(self.size - 1)


class _Numbered:
    def __init__(self, seq: int) -> None:
        self._seq = seq

    def seq(self, timeout: float | None = None) -> int:
        return self._seq


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


def cpu_line(label: str, sent: Sent, n: int) -> str:
    """CPU µs per message: this process (by thread) and the parsing process."""
    us = {name: seconds / n * 1e6 for name, seconds in sent.threads.items()}
    parts = ", ".join(f"{name} {value:,.0f}" for name, value in sorted(us.items()) if not name.startswith("parser"))
    each = [f"{value:,.0f}" for name, value in sorted(us.items()) if name.startswith("parser")]
    total = sum(value for name, value in us.items() if name.startswith("parser"))
    parser = f"; parsing processes {total:,.0f} µs ({' + '.join(each)})" if each else ""
    return (f"{label}: this process {sent.cpu_seconds / n * 1e6:,.0f} µs/message ({parts}){parser}; "
            f"sender {sent.sender_cpu / n * 1e6:,.0f} µs; load average {sent.load:.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--tls-only", action="store_true", help="only the TLS receiver (no rsyslog, no import)")
    parser.add_argument("--parse", choices=("process", "inline", "both"), default="process",
                        help="where the receiver parses (default: its parsing process, as 'serve' does)")  # fmt: skip
    parser.add_argument("--processes", default="2", help="parsing processes, or several counts to run in turn: 1,2")
    parser.add_argument("--import-only", action="store_true", help="only audit import (no TLS, no rsyslog)")
    args = parser.parse_args()
    n = 2_000 if args.quick else 20_000
    m = 5_000 if args.quick else 50_000
    counts = [int(c) for c in args.processes.split(",")]
    modes = [f"process×{c}" for c in counts] if args.parse != "inline" else []
    modes += ["inline"] if args.parse != "process" else []
    console.print(f"load average before: {os.getloadavg()}; {os.cpu_count()} CPUs")
    table = Table(title="pacsguard ingest (one run)")
    for column in ("measure", "count", "seconds", "rate"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    cpu: list[str] = []
    with tempfile.TemporaryDirectory(prefix="pacsguard-bench-ingest-") as tmp:
        root = Path(tmp)
        site, pki = make_site(root)
        frames = root / "frames.bin"
        source = AuditSource("BENCH-PACS")
        data = b"".join(frame(syslog_record(e, hostname="pacs1", source=source)) for e in events(n))
        frames.write_bytes(data)
        console.print(f"{n:,} DICOM XML messages, {len(data) / n:,.0f} bytes each on average, "
                      f"{args.connections} TLS connections")  # fmt: skip
        for mode in modes if not args.import_only else []:
            real_site, null_site = root / f"real-{mode}", root / f"null-{mode}"
            shutil.copytree(site, real_site)
            shutil.copytree(site, null_site)
            parse, _, count = mode.partition("×")
            real = receiver_run(real_site, pki, frames, n, args.connections, False, parse, int(count or 0))
            null = receiver_run(null_site, pki, frames, n, args.connections, True, parse, int(count or 0))
            rec, dur = real.seconds_to.get("received"), real.seconds_to.get("durable")
            nd = null.seconds_to.get("durable")
            table.add_row(f"\\[{mode}] TLS → received (framed, queued), real log", f"{n:,}", f"{rec or 0:.2f}",
                          rate(n, rec))  # fmt: skip
            table.add_row(f"\\[{mode}] TLS → durable in the audit log", f"{n:,}", f"{dur or 0:.2f}", rate(n, dur))
            table.add_row(f"\\[{mode}] TLS → parsed, no-op log (receiver alone)", f"{n:,}", f"{nd or 0:.2f}",
                          rate(n, nd))  # fmt: skip
            cpu.append(cpu_line(f"[{mode}] real log", real, n))
            cpu.append(cpu_line(f"[{mode}] no-op log", null, n))
        if not args.tls_only and not args.import_only:
            peer = rsyslog_run(root, pki, frames, n, args.connections)
            if peer is not None:
                w = peer.seconds_to.get("written")
                table.add_row("peer: rsyslog TLS → plain file", f"{n:,}", f"{w or 0:.2f}", rate(n, w))
        if not args.tls_only:
            jsonl = root / "export.jsonl"
            with jsonl.open("w") as out:
                write_jsonl(events(m), out)
            imported_s, imported = import_run(root, "import-site", jsonl, null_log=False)
            parse_s, parsed = import_run(root, "import-null", jsonl, null_log=True)
            table.add_row("audit import of JSONL (durable)", f"{imported:,}", f"{imported_s:.2f}",
                          rate(imported, imported_s))  # fmt: skip
            table.add_row("audit import of JSONL, no-op log", f"{parsed:,}", f"{parse_s:.2f}", rate(parsed, parse_s))
    console.print(table)
    console.print("CPU per TLS message (this process: receiver loop, log writer, the rest; the parsing process):")
    for line in cpu:
        console.print("  " + escape(line), soft_wrap=True)
    console.print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
