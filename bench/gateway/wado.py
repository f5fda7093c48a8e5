"""WADO-RS throughput alone: direct Orthanc against the same series through pacsguard,
interleaved, with the CPU each process spent per MB (less noisy than MB/s on a shared
machine).

    .venv/bin/python bench/gateway/wado.py                 # a 200-instance series (~105 MB), 7 rounds
    .venv/bin/python bench/gateway/wado.py --series 100 --rounds 5

Each round retrieves the series once directly and once through the gateway (order
alternating); the table gives the median and best MB/s of each path, the ratio of the
medians, and the CPU seconds per GB of the client, the gateway and Orthanc. Both paths are
plain HTTP on loopback (no TLS on either side).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import ACCEPT, _series, _site, _stow, gateway_process
from tests.orthanc import running_orthanc

console = Console()
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def fetch(client: httpx.Client, url: str) -> tuple[int, float]:
    """Bytes and seconds of one streamed retrieval."""
    start, size = time.perf_counter(), 0
    with client.stream("GET", url, headers={"Accept": ACCEPT}) as response:
        response.raise_for_status()
        for chunk in response.iter_raw(1 << 20):
            size += len(chunk)
    return size, time.perf_counter() - start


def run(series: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, running_orthanc("bench") as orthanc:
        token = _site(Path(tmp) / "site")
        assert orthanc._process is not None
        orthanc_pid = orthanc._process.pid
        direct = httpx.Client(timeout=300, trust_env=False)
        through = httpx.Client(timeout=300, trust_env=False, headers={"Authorization": f"Bearer {token}"})
        with direct, through, gateway_process(Path(tmp) / "site", orthanc.url) as (gw, gw_pid):
            study, instances = _series(series)
            _stow(direct, orthanc.dicomweb_url, instances)
            through.get(f"{gw}/dicomweb/studies").raise_for_status()  # catalogues the study
            paths = {"direct": (direct, f"{orthanc.dicomweb_url}/studies/{study}"),
                     "gateway": (through, f"{gw}/dicomweb/studies/{study}")}  # fmt: skip
            for client, url in paths.values():
                fetch(client, url)  # warm both paths (page cache, connections)
            rates: dict[str, list[float]] = {name: [] for name in paths}
            cpu: dict[str, dict[str, float]] = {name: {"client": 0.0, "gateway": 0.0, "orthanc": 0.0} for name in paths}
            gigabytes: dict[str, float] = dict.fromkeys(paths, 0.0)
            for n in range(rounds):
                order = list(paths) if n % 2 == 0 else list(reversed(paths))
                for name in order:
                    client, url = paths[name]
                    before = (time.process_time(), cpu_seconds(gw_pid), cpu_seconds(orthanc_pid))
                    size, seconds = fetch(client, url)
                    after = (time.process_time(), cpu_seconds(gw_pid), cpu_seconds(orthanc_pid))
                    rates[name].append(size / 1e6 / seconds)
                    gigabytes[name] += size / 1e9
                    for key, b, a in zip(("client", "gateway", "orthanc"), before, after, strict=True):
                        cpu[name][key] += a - b
        table = Table(title=f"WADO-RS, one series of {series} instances ({size / 1e6:.0f} MB), {rounds} rounds; "
                            f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
        for column in ("path", "median MB/s", "best MB/s", "client CPU s/GB", "gateway CPU s/GB", "Orthanc CPU s/GB"):
            table.add_column(column, justify="right")
        for name in paths:
            per = {k: v / gigabytes[name] for k, v in cpu[name].items()}
            table.add_row(name, f"{statistics.median(rates[name]):.0f}", f"{max(rates[name]):.0f}",
                          f"{per['client']:.2f}", f"{per['gateway']:.2f}", f"{per['orthanc']:.2f}")  # fmt: skip
        console.print(table)
        ratio = statistics.median(rates["gateway"]) / statistics.median(rates["direct"])
        per_round = ", ".join(f"{g / d:.0%}" for d, g in zip(rates["direct"], rates["gateway"], strict=True))
        console.print(f"gateway / direct (medians): {ratio:.0%}; per round: {per_round}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=200, help="instances in the series (0.5 MB each)")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    run(args.series, args.rounds)
