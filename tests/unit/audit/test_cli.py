"""``pacsguard audit verify / head / sign-head / prove / consistency`` on a scaffolded site."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from pacsguard.audit import check_consistency, check_inclusion
from pacsguard.cli import main
from pacsguard.storage import make_engine


@pytest.fixture
def site(logged_site: Callable[..., Path]) -> Path:
    """A site with a signing key and 30 events, a head every 10."""
    return logged_site(10, 10, 10, head_every=10)


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
