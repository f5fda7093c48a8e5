"""Gateway benchmark: direct Orthanc against the same Orthanc through pacsguard.

    .venv/bin/python bench/gateway/run.py            # 1,000 studies, 100 MB series
    .venv/bin/python bench/gateway/run.py --quick    # 200 studies, 25 MB series

One Orthanc 1.10 (DICOMweb plugin, from Debian) on loopback; the gateway runs in its own
process (uvicorn, ``serve.py``) over a fresh SQLite site, so the client, the gateway and
Orthanc each have a process. The client is httpx with keep-alive. Prints QIDO latency
(p50/p99) by PatientID over N studies and for an unfiltered page of 50, WADO-RS
throughput for a large series (median of 7 retrievals per path, the paths interleaved),
STOW-RS instances/s, and the gateway/direct ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.orthanc import running_orthanc  # noqa: E402
from tests.postgres import free_port  # noqa: E402

from pacsguard import config  # noqa: E402
from pacsguard.app import open_site  # noqa: E402
from pacsguard.archives.parts import join_related  # noqa: E402
from pacsguard.archives.synthetic import make_instance  # noqa: E402
from pacsguard.cli import main as cli  # noqa: E402
from pacsguard.directory import Operator, PrincipalKind  # noqa: E402
from pacsguard.domain import RoleRef  # noqa: E402

console = Console()
ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'
UID_ROOT = "1.2.826.0.1.3680043.10.999"
STORE_RULE = """
  - id: north-radiologists-store
    effect: permit
    roles: [radiologist]
    actions: [store]
"""


def _uid() -> str:
    return f"{UID_ROOT}.{secrets.randbelow(10**20)}.{secrets.randbelow(10**9)}"


def _site(directory: Path) -> str:
    """A scaffolded site with one radiologist and her API token; returns the token."""
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli(["init", str(directory)]) == 0
    policy = directory / "policies" / "north.yaml"
    policy.write_text(policy.read_text() + STORE_RULE)
    with open_site(config.load(directory)) as site:
        d, op = site.directory, Operator("bench")
        d.principals.create("alice", kind=PrincipalKind.PERSON, display_name="Alice", zone="north", by=op)
        d.assignments.grant("alice", RoleRef("north", "radiologist"), by=op)
        return d.tokens.issue("alice", name="bench", scopes=["dicomweb"], by=op).secret


def _studies(count: int, prefix: str = "P") -> list[bytes]:
    out = []
    for n in range(count):
        out.append(make_instance(patient_id=f"{prefix}-{n:05d}", patient_name=f"Bench^{n}", study_uid=_uid(),
                                 series_uid=_uid(), sop_uid=_uid(), study_date=date(2024, 1, 1 + n % 28),
                                 rows=64, columns=64))  # fmt: skip
    return out


def _series(count: int) -> tuple[str, list[bytes]]:
    study, series = _uid(), _uid()
    return study, [
        make_instance(patient_id="P-BIG", patient_name="Big^Series", study_uid=study, series_uid=series,
                      sop_uid=_uid(), study_date=date(2024, 2, 1), number=i + 1, rows=512, columns=512)
        for i in range(count)
    ]  # fmt: skip


def _stow(client: httpx.Client, url: str, instances: list[bytes], batch: int = 50) -> float:
    """Store ``instances`` in POSTs of ``batch``; returns instances per second."""
    start = time.perf_counter()
    for at in range(0, len(instances), batch):
        boundary = secrets.token_hex(8)
        response = client.post(f"{url}/studies", content=join_related(instances[at : at + batch], boundary),
                               headers={"Content-Type": f'multipart/related; type="application/dicom"; '
                                                        f"boundary={boundary}"})  # fmt: skip
        response.raise_for_status()
    return len(instances) / (time.perf_counter() - start)


def _latencies(call: Callable[[], httpx.Response], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = call()
        times.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    return times


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _wado_once(client: httpx.Client, url: str) -> float:
    """MB/s of one streamed retrieval of the study at ``url``."""
    start, size = time.perf_counter(), 0
    with client.stream("GET", url, headers={"Accept": ACCEPT}) as response:
        response.raise_for_status()
        for chunk in response.iter_raw(1 << 20):
            size += len(chunk)
    return size / 1e6 / (time.perf_counter() - start)


def _wado(paths: dict[str, tuple[httpx.Client, str]], rounds: int) -> dict[str, float]:
    """Median MB/s per path over ``rounds`` rounds, the paths interleaved (order
    alternating) so that both see the same moments of a shared machine."""
    for client, url in paths.values():
        _wado_once(client, url)  # warm: page cache, connections
    rates: dict[str, list[float]] = {name: [] for name in paths}
    for n in range(rounds):
        for name in list(paths) if n % 2 == 0 else list(reversed(paths)):
            rates[name].append(_wado_once(*paths[name]))
    return {name: statistics.median(values) for name, values in rates.items()}


@contextlib.contextmanager
def _gateway(site: Path, orthanc: str) -> Iterator[str]:
    with gateway_process(site, orthanc) as (url, _):
        yield url


@contextlib.contextmanager
def gateway_process(site: Path, orthanc: str) -> Iterator[tuple[str, int]]:
    """``serve.py`` for ``site`` in front of ``orthanc``: its base URL and process id."""
    port = free_port()
    process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("serve.py")), str(site), orthanc,
                                str(port)], cwd=ROOT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1, trust_env=False).status_code == 200:
                    break
            time.sleep(0.05)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=15)


def run(studies: int, series: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, running_orthanc("bench") as orthanc:
        token = _site(Path(tmp) / "site")
        direct_url = orthanc.dicomweb_url
        rows: list[tuple[str, str, str, str]] = []
        with httpx.Client(timeout=300, trust_env=False) as direct, _gateway(Path(tmp) / "site", orthanc.url) as gw:
            through = httpx.Client(timeout=300, trust_env=False, headers={"Authorization": f"Bearer {token}"})
            gw_url = f"{gw}/dicomweb"
            console.print(f"storing {studies} one-instance studies and a {series}-instance series …")
            stow_direct = _stow(direct, direct_url, _studies(studies))
            stow_gw = _stow(through, gw_url, _studies(min(studies, 200), "G"))
            big_study, big = _series(series)
            _stow(direct, direct_url, big)
            through.get(f"{gw_url}/studies").raise_for_status()  # the first sight of each study catalogues it
            ids = [f"P-{random.randrange(studies):05d}" for _ in range(repeat)]
            wado = _wado({"direct": (direct, f"{direct_url}/studies/{big_study}"),
                          "gateway": (through, f"{gw_url}/studies/{big_study}")}, 7)  # fmt: skip
            for name, client, base in (("direct", direct, direct_url), ("gateway", through, gw_url)):
                by_id = iter(ids)
                lat = _latencies(lambda c=client, b=base, i=by_id: c.get(f"{b}/studies?PatientID={next(i)}"), repeat)
                page = _latencies(lambda c=client, b=base: c.get(f"{b}/studies?limit=50"), max(5, repeat // 20))
                mbs = wado[name]
                rows.append((name, f"{_pct(lat, .5):.1f} / {_pct(lat, .99):.1f}", f"{statistics.median(page):.0f}",
                             f"{mbs:.0f}"))  # fmt: skip
            through.close()
        size = sum(len(i) for i in big) / 1e6
        table = Table(title=f"{studies} studies; WADO series of {series} instances ({size:.0f} MB)")
        for column in (
            "path",
            "QIDO by PatientID p50 / p99 (ms)",
            "QIDO limit=50 p50 (ms)",
            "WADO-RS MB/s (median of 7, interleaved)",
        ):
            table.add_column(column)
        for row in rows:
            table.add_row(*row)
        console.print(table)
        d, g = rows
        ratio = Table(title="gateway / direct")
        for column in ("QIDO p50 delta (ms)", "WADO throughput", "STOW inst/s direct", "STOW inst/s gateway"):
            ratio.add_column(column)
        qd, qg = float(d[1].split(" / ")[0]), float(g[1].split(" / ")[0])
        ratio.add_row(f"{qg - qd:+.1f}", f"{float(g[3]) / float(d[3]):.0%}", f"{stow_direct:.0f}", f"{stow_gw:.0f}")
        console.print(ratio)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 studies and a 50-instance series")
    args = parser.parse_args()
    if args.quick:
        run(200, 50, 100)
    else:
        run(1000, 200, 400)
