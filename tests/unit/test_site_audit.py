"""The composition root: the directory's events land in the site's audit log, which
verifies, exports, and signs heads with the key ``pacsguard init`` made."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pacsguard import config
from pacsguard.app import open_site, open_syslog_forwarder
from pacsguard.audit.reader import LogReader
from pacsguard.cli import main


@pytest.fixture
def site(make_site: Callable[..., Path], add_person: Callable[..., None]) -> Path:
    site = make_site()
    add_person(site, "olga", "north", "security-officer")
    assert main(["users", "grant", "olga", "radiologist", "--by", "nobody", "--site", str(site)]) != 0
    return site


def test_directory_events_are_in_the_audit_log_in_order(site: Path) -> None:
    with open_site(config.load(site)) as opened:
        events = list(LogReader(opened.engine).iter_events(None, None))
    assert [e.type for e in events] == [
        "principal.created",
        "password.changed",
        "admin.role.grant",
        "admin.role.grant",
    ]
    assert [e.seq for e in events] == [0, 1, 2, 3]
    assert events[-1].outcome.value == "denied"


def test_the_log_verifies_and_heads_are_signed_with_the_site_key(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "sign-head", "--site", str(site)]) == 0
    head = json.loads(capsys.readouterr().out)
    assert head["size"] == 4
    assert main(["audit", "verify", "--site", str(site)]) == 0


def test_export_from_the_site_log_is_itself_recorded(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["audit", "export", "--format", "jsonl", "--site", str(site)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["type"] for e in lines][-1] == "audit.log.used"
    assert lines[-1]["detail"]["export"] == "jsonl"
    assert len(lines) == 5


def test_pki_init_keeps_the_signing_key_the_log_was_signed_with(site: Path) -> None:
    key = (site / "pki" / "signing-key.pem").read_bytes()
    assert main(["pki", "init", "--site", str(site)]) == 0
    assert main(["pki", "init", "--force", "--site", str(site)]) == 0
    assert (site / "pki" / "signing-key.pem").read_bytes() == key
    assert main(["audit", "sign-head", "--site", str(site)]) == 0
    assert main(["audit", "verify", "--site", str(site)]) == 0


def test_the_atna_forwarder_of_audit_syslog_spools_the_site_log(site: Path) -> None:
    assert main(["pki", "init", "--site", str(site)]) == 0  # the repository's CA, here the site's own
    toml = site / "pacsguard.toml"
    toml.write_text(toml.read_text() + '\n[audit.syslog]\nhost = "127.0.0.1"\nca_file = "pki/ca.pem"\n')
    with open_site(config.load(site)) as opened:
        forwarder = open_syslog_forwarder(opened)
        assert forwarder is not None
        taken = forwarder.pull(LogReader(opened.engine))
        assert taken == opened.audit.size == 4
        assert forwarder.status().pending == 4
        forwarder.close()
    assert any((site / "spool" / "syslog").iterdir())


def test_no_syslog_section_no_forwarder(site: Path) -> None:
    with open_site(config.load(site)) as opened:
        assert open_syslog_forwarder(opened) is None


def test_sign_head_reaches_the_configured_witness(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toml = site / "pacsguard.toml"
    toml.write_text(toml.read_text().replace('witness_file = ""', 'witness_file = "witness/heads.jsonl"'))
    capsys.readouterr()
    assert main(["audit", "sign-head", "--site", str(site)]) == 0
    head = json.loads(capsys.readouterr().out)
    witnessed = [json.loads(line) for line in (site / "witness" / "heads.jsonl").read_text().splitlines()]
    assert witnessed[-1]["size"] == head["size"] == 4
    assert witnessed[-1]["root_hash"] == head["root_hash"]
