"""``pacsguard monitor run --once`` and ``pacsguard monitor status`` on a real site."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pacsguard import config
from pacsguard.cli import main
from pacsguard.monitor.store import MonitorStore
from pacsguard.storage import make_engine


@pytest.fixture
def site(make_site: Callable[..., Path], add_person: Callable[..., None]) -> Path:
    site = make_site()
    add_person(site, "olga", "north", "security-officer")
    return site


def test_run_once_then_status_shows_no_lag_and_the_alerts(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["monitor", "status", "--site", str(site)]) == 0
    before = capsys.readouterr().out
    assert "cursor: seq -1, 3 events behind" in before
    assert main(["monitor", "run", "--once", "--site", str(site)]) == 0
    assert "seq 2" in capsys.readouterr().out
    assert main(["monitor", "status", "--site", str(site)]) == 0
    after = capsys.readouterr().out
    assert "cursor: seq 2, 0 events behind" in after
    assert "leader: no monitor is running" in after
    assert "alerts: 2 stored (2 open); incidents: 1 not resolved" in after  # the new user and the grant
    assert "containments in force: 0" in after
    assert "dashboard" in after
    assert "email" in after
    assert "NO" in after


def test_status_shows_failed_deliveries_and_their_retries(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:  # a port nothing listens on: the SMTP server is down
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (site / "notify.yaml").write_text(
        f"email:\n  host: 127.0.0.1\n  port: {port}\n  sender: pg@site.test\n  to: [soc@site.test]\n"
    )
    assert main(["monitor", "run", "--once", "--site", str(site)]) == 0
    capsys.readouterr()
    assert main(["monitor", "status", "--site", str(site)]) == 0
    out = "".join(capsys.readouterr().out.split())
    cells = out.split("│email│")[1].split("│")
    assert cells[:6] == ["yes", "2", "2", "0", "0", "2"]  # configured, pending, retrying, delivered, failed, attempts
    assert "email:lasterror:SMTPConnectError" in out
    assert "nextretry" in out


def test_a_bad_notify_file_names_file_line_and_key(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (site / "notify.yaml").write_text("webhook:\n  url: https://soc.test/hook\n  secret_file: nope\n  retries: 3\n")
    assert main(["monitor", "status", "--site", str(site)]) == 2
    err = capsys.readouterr().err.replace("\n", "")
    assert "notify.yaml:4 [webhook.retries]: unknown key" in err


def test_run_tails_live_until_ctrl_c(site: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "pacsguard", "monitor", "run", "--site", str(site)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    db = make_engine(config.load(site).database_url)
    store = MonitorStore(db)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        checkpoint = store.checkpoint()
        if checkpoint is not None and checkpoint.last_seq == 2:
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "stopping" in out
    assert "seq 2" in out
    assert store.alert_count() == 2
    db.dispose()
