"""Authentication of every request, archives that fail, and errors that must not leak."""

from __future__ import annotations

from typing import Any

import httpx

from pacsguard.archives import DicomJson, DicomWebArchive, EmbeddedArchive, QidoQuery
from pacsguard.domain import AuthStrength
from pacsguard.gateway import GatewayOptions
from tests.postgres import free_port
from tests.world import OPERATOR, World, jwt_for, study_uids


def test_no_credentials_is_a_401_with_a_challenge(world: World) -> None:
    response = world.get(None, "/dicomweb/studies")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="pacsguard"'
    assert world.studies["N1"].study_uid not in response.text


def test_refused_credentials_are_401_invalid_token_and_audited(world: World) -> None:
    for header in ("Bearer pgt_not-a-token", "Basic YWxpY2U6cHc=", "Bearer not.a.jwt"):
        response = world.get(None, "/dicomweb/studies", headers={"Authorization": header})
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
    response = world.get("alice-noscope", "/dicomweb/studies")
    assert response.status_code == 401
    reasons = [e.detail["reason"] for e in world.events("token.rejected")]
    assert reasons == ["unknown_token", "malformed_header", "malformed", "scope"]
    assert world.events("study.query") == []


def test_an_oidc_bearer_jwt_authenticates_with_the_issuers_strength(world: World) -> None:
    now = world.site.clock.now()
    token = jwt_for("alice", now, amr=["pwd", "otp"])
    response = world.get(None, "/dicomweb/studies", headers={"Authorization": f"Bearer {token}"})
    assert len(study_uids(response)) == 2
    (event,) = world.events("study.query")
    assert (event.actor.principal_id, event.actor.auth_strength) == ("alice", 2)
    forged = jwt_for("mallory", now)
    assert world.get(None, "/dicomweb/studies", headers={"Authorization": f"Bearer {forged}"}).status_code == 401


def test_a_session_cookie_authenticates_and_names_the_session(world: World) -> None:
    issued = world.site.directory.sessions.create("alice", AuthStrength.TWO_FACTOR)
    cookie = {"Cookie": f"pacsguard_session={issued.secret}; pacsguard_device=laptop-3"}
    assert len(study_uids(world.get(None, "/dicomweb/studies", headers=cookie))) == 2
    (event,) = world.events("study.query")
    assert event.actor.session_id == issued.session.id
    assert event.actor.auth_strength == 2
    assert event.actor.device_id == "laptop-3"
    bad = world.get(None, "/dicomweb/studies", headers={"Cookie": "pacsguard_session=nope"})
    assert bad.status_code == 401


def test_a_contained_account_is_refused_at_once(world: World) -> None:
    assert world.get("alice", "/dicomweb/studies").status_code == 200
    world.site.directory.contain("alice", reason="test", by=OPERATOR)
    assert world.get("alice", "/dicomweb/studies").status_code == 401


def test_a_bad_purpose_is_a_400(world: World) -> None:
    response = world.get("alice", "/dicomweb/studies", headers={"X-Purpose": "curiosity"})
    assert response.status_code == 400
    assert "treatment" in response.json()["error"]


def test_one_archive_down_the_others_answer_with_a_warning(world: World) -> None:
    down = DicomWebArchive(f"http://127.0.0.1:{free_port()}/dicom-web", name="cardio-pacs", timeout=5)
    app = world.app_with({**world.archives, "north-cardiology": down})
    response = world.get("alice", "/dicomweb/studies", app=app)
    assert len(study_uids(response)) == 2
    assert "cardio-pacs" in response.headers["warning"]
    assert response.headers["warning"].startswith("299 pacsguard")
    (event,) = world.events("study.query")
    assert event.detail["failed"] == ["cardio-pacs"]


def test_all_archives_down_is_a_502(world: World) -> None:
    down = DicomWebArchive(f"http://127.0.0.1:{free_port()}/dicom-web", name="gone", timeout=5)
    response = world.get("alice", "/dicomweb/studies", app=world.app_with({"north": down}))
    assert response.status_code == 502
    assert "archive" in response.json()["error"]
    (event,) = world.events("study.query")
    assert event.outcome.value == "error"


class Exploding(EmbeddedArchive):
    """An embedded archive whose search breaks in an unexpected way."""

    async def search_studies(self, query: QidoQuery) -> list[DicomJson]:
        raise RuntimeError("secret internal detail /etc/passwd")


def test_an_unexpected_error_is_a_generic_500(world: World) -> None:
    north: Any = world.archives["north"]
    broken = Exploding("north-pacs", world.site.engine, north.root, bytes(32))
    response = world.get("alice", "/dicomweb/studies", app=world.app_with({"north": broken}))
    assert response.status_code == 500
    assert response.json() == {"error": "internal error; the incident was logged"}
    assert "secret" not in response.text


def test_healthz_reports_the_audit_log(world: World) -> None:
    response = world.get(None, "/healthz")
    assert response.status_code == 200
    assert response.json()["audit"]["state"] == "healthy"
    assert response.json()["status"] == "ok"


def test_the_body_cap_is_configurable(world: World) -> None:
    app = world.app_with(world.archives, GatewayOptions(max_body_bytes=10))
    response = world.request("alice", "POST", "/dicomweb/studies", app=app, content=b"x" * 11,
                             headers={"Content-Type": "multipart/related; boundary=x"})  # fmt: skip
    assert response.status_code == 413
    assert "10 bytes" in response.json()["error"]


def test_unknown_paths_and_methods_are_plain_404s(world: World) -> None:
    for method, path in [("GET", "/dicomweb"), ("GET", "/dicomweb/"), ("PUT", "/dicomweb/studies"),
                         ("GET", "/system"), ("GET", "/dicomweb/servers")]:  # fmt: skip
        response = world.request("alice", method, path)
        assert response.status_code == 404, path
        assert response.json() == {"error": "not found"}
    assert isinstance(httpx.Response(200), httpx.Response)
