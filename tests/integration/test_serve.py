"""``pacsguard serve`` for real: a server process on 127.0.0.1 with the site's TLS
certificate, two embedded archives, the live monitor; a client stores and finds studies
over HTTPS with API tokens, and the audit log verifies afterwards."""

from __future__ import annotations

import contextlib
import json
import re
import ssl
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from pacsguard.archives.parts import join_related
from pacsguard.archives.synthetic import make_study
from pacsguard.cli import main
from tests.serving import serve_process

ARCHIVES = (
    '\n[[archives]]\nname = "north-store"\nzone = "north"\n\n[[archives]]\nname = "south-store"\nzone = "south"\n'
)


def _token(site: Path, user: str, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["users", "token", user, "--scope", "dicomweb", "--days", "1", "--site", str(site)]) == 0
    found = re.search(r"pgt_\S+", capsys.readouterr().out)
    assert found is not None
    return found.group()


@pytest.fixture
def site(make_site: Callable[..., Path], add_person: Callable[..., None]) -> Path:
    site = make_site()
    (site / "pacsguard.toml").write_text((site / "pacsguard.toml").read_text() + ARCHIVES)
    (site / "policies" / "store.yaml").write_text(
        "zone: north\nrules:\n  - id: north-radiologists-store\n    effect: permit\n"
        "    roles: [radiologist]\n    actions: [store]\n"
    )
    assert main(["pki", "init", "--site", str(site)]) == 0
    add_person(site, "alice", "north", "radiologist")
    add_person(site, "sam", "south", "security-officer")
    return site


def _trust(site: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(site / "pki" / "ca.pem"))


def serving(site: Path) -> contextlib.AbstractContextManager[str]:
    """``pacsguard serve`` over HTTPS with the site's certificate and the live monitor."""
    return serve_process(site, verify=_trust(site))


def test_serve_stores_finds_and_filters_over_https(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """alice (north radiologist) stores and finds; sam (south officer, no data rights, and
    no agreement role) finds nothing and gets the 404 of a study that does not exist."""
    alice, sam = _token(site, "alice", capsys), _token(site, "sam", capsys)
    study = make_study(patient_id="P-77", instances_per_series=2)
    with serving(site) as base, httpx.Client(base_url=base, verify=_trust(site), timeout=30) as client:
        body = join_related(study.instances, "b0und")
        stored = client.post(
            "/dicomweb/studies",
            content=body,
            headers={
                "Authorization": f"Bearer {alice}",
                "Content-Type": 'multipart/related; type="application/dicom"; boundary=b0und',
            },
        )
        assert stored.status_code == 200, stored.text
        found = client.get("/dicomweb/studies?PatientID=P-77", headers={"Authorization": f"Bearer {alice}"})
        assert found.status_code == 200
        assert [s["0020000D"]["Value"][0] for s in found.json()] == [study.study_uid]
        hidden = client.get("/dicomweb/studies?PatientID=P-77", headers={"Authorization": f"Bearer {sam}"})
        assert hidden.status_code in (200, 204)
        assert not hidden.content or hidden.json() == []
        refused = client.get(f"/dicomweb/studies/{study.study_uid}", headers={"Authorization": f"Bearer {sam}"})
        assert refused.status_code == 404
        assert client.get("/dicomweb/studies").status_code == 401
    capsys.readouterr()
    assert main(["audit", "verify", "--site", str(site)]) == 0
    capsys.readouterr()
    assert main(["audit", "export", "--format", "jsonl", "--site", str(site)]) == 0
    types = [json.loads(line)["type"] for line in capsys.readouterr().out.splitlines()]
    assert {"study.store", "study.query", "access.denied"} <= set(types)
    assert (site / "archive" / "north-store").is_dir()


def test_serve_without_a_certificate_says_what_to_do(
    make_site: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site("bare")
    capsys.readouterr()
    assert main(["serve", "--site", str(site)]) == 2
    assert "pacsguard pki init" in capsys.readouterr().err


def test_an_archive_of_an_unknown_zone_is_a_clear_error(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toml = site / "pacsguard.toml"
    toml.write_text(toml.read_text() + '\n[[archives]]\nname = "mars-store"\nzone = "mars"\n')
    capsys.readouterr()
    assert main(["serve", "--site", str(site), "--port", "0"]) == 2
    assert "unknown zone 'mars'" in capsys.readouterr().err


def test_a_device_signs_in_with_its_client_certificate(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A CT scanner with a certificate from the site CA, registered by fingerprint, queries
    without any other credential: one login per TLS connection, refused without it."""
    capsys.readouterr()
    assert main(["pki", "issue", "client", "ct01", "--ae-title", "CT01", "--site", str(site)]) == 0
    found = re.search(r"fingerprint\s+([0-9a-f]{64})", capsys.readouterr().out)
    assert found is not None
    assert main(["users", "add", "ct01", "--kind", "device", "--zone", "north", "--ae-title", "CT01",
                 "--fingerprint", found.group(1), "--no-password", "--site", str(site)]) == 0  # fmt: skip
    assert main(["users", "grant", "ct01", "north/radiologist", "--site", str(site)]) == 0
    device = _trust(site)
    device.load_cert_chain(site / "pki" / "clients" / "ct01.pem", site / "pki" / "clients" / "ct01-key.pem")
    with serving(site) as base:
        with httpx.Client(base_url=base, verify=device, timeout=30) as client:
            for _ in range(3):  # one keep-alive connection
                assert client.get("/dicomweb/studies").status_code == 200
        with httpx.Client(base_url=base, verify=device, timeout=30) as client:
            assert client.get("/dicomweb/studies").status_code == 200
        with httpx.Client(base_url=base, verify=_trust(site), timeout=30) as anonymous:
            assert anonymous.get("/dicomweb/studies").status_code == 401
    capsys.readouterr()
    assert main(["audit", "export", "--format", "jsonl", "--site", str(site)]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    logins = [e for e in events if e["type"] == "login.success" and e["detail"].get("method") == "certificate"]
    assert len(logins) == 2  # one per TLS connection, not one per request
    assert {e["actor"]["ae_title"] for e in logins} == {"CT01"}
    queries = [e for e in events if e["type"] == "study.query" and e["actor"].get("principal_id") == "ct01"]
    assert len(queries) == 4
    assert all(q["actor"]["auth_strength"] == 3 for q in queries)
