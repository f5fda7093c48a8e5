"""``pacsguard audit verify / head / sign-head / prove / consistency`` on a scaffolded site."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text

from pacsguard.audit import AuditLog, AuditOptions, check_consistency, check_inclusion
from pacsguard.cli import main
from pacsguard.clock import FakeClock
from pacsguard.storage import make_engine, migrate
from tests.unit.audit.conftest import fill


@pytest.fixture
def site(make_site: Callable[..., Path], clock: FakeClock) -> Path:
    """A site with a signing key and 30 events, a head every 10."""
    site = make_site()
    key = Ed25519PrivateKey.generate()
    (site / "pki").mkdir(exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (site / "pki" / "signing-key.pem").write_bytes(pem)
    engine = make_engine(f"sqlite:///{site / 'pacsguard.db'}")
    migrate(engine)
    with AuditLog(engine, signing_key=key, clock=clock, options=AuditOptions(head_every_events=10)) as log:
        for _ in range(3):
            fill(log, clock, 10)
    engine.dispose()
    return site


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_verify_head_prove_and_consistency(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "audit", "verify", "--site", str(site))
    assert code == 0, out
    assert "30 events" in out
    code, out, _ = run(capsys, "audit", "head", "--site", str(site))
    assert code == 0
    assert json.loads(out)["size"] == 30
    code, out, _ = run(capsys, "audit", "prove", "7", "--site", str(site))
    assert code == 0
    assert check_inclusion(json.loads(out))
    code, out, _ = run(capsys, "audit", "consistency", "10", "30", "--site", str(site))
    assert code == 0
    assert check_consistency(json.loads(out))


def test_sign_head_makes_a_new_head(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "audit", "sign-head", "--site", str(site))
    assert code == 0
    assert json.loads(out)["size"] == 30


def test_verify_exits_1_and_names_the_seq(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    engine = make_engine(f"sqlite:///{site / 'pacsguard.db'}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET principal_id = 'mallory' WHERE seq = 14"))
    engine.dispose()
    code, out, _ = run(capsys, "audit", "verify", "--site", str(site))
    assert code == 1
    assert "FAILED at seq 14" in out


def test_bad_input_is_a_message_not_a_traceback(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "audit", "prove", "500", "--site", str(site))
    assert code == 1
    assert "no event 500" in err
    code, _, err = run(capsys, "audit", "consistency", "20", "10", "--site", str(site))
    assert "need 0 < OLD <= NEW" in err
    code, _, err = run(capsys, "audit", "prove", "-3", "--site", str(site))
    assert code == 2
    (site / "pki" / "signing-key.pem").write_text("not a key")
    code, _, err = run(capsys, "audit", "sign-head", "--site", str(site))
    assert code == 1
    assert "signing-key.pem" in err.replace("\n", "")
    assert "Traceback" not in err
