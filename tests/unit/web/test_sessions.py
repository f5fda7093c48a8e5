"""Signing in over HTTP: the session cookie, sign-out, the same refusal for every bad
sign-in, the one-time code step, and the cookie working on DICOMweb."""

from __future__ import annotations

import httpx
import pyotp

from tests.conftest import PASSWORD
from tests.world import OPERATOR, World

REFUSED = "the user name, password or code is not valid, or the account cannot sign in now"


def sign_in(world: World, username: str, password: str = PASSWORD, **extra: str) -> httpx.Response:
    return world.request(None, "POST", "/api/v1/sessions", json={"username": username, "password": password, **extra})


def cookies_of(response: httpx.Response) -> dict[str, str]:
    return {c.name: c.value or "" for c in response.cookies.jar}


def with_password(world: World, who: str) -> None:
    world.site.directory.auth.set_password(who, PASSWORD, by=OPERATOR)


def test_sign_in_sets_a_strict_http_only_cookie_that_opens_dicomweb(world: World) -> None:
    with_password(world, "alice")
    response = sign_in(world, "alice")
    assert response.status_code == 201, response.text
    assert response.json()["principal_id"] == "alice"
    assert response.json()["auth_strength"] == 1
    set_cookies = response.headers.get_list("set-cookie")
    session = next(c for c in set_cookies if c.startswith("pacsguard_session="))
    assert "HttpOnly" in session
    assert "SameSite=strict" in session or "SameSite=Strict" in session
    assert any(c.startswith("pacsguard_device=") for c in set_cookies)
    cookies = cookies_of(response)
    header = "; ".join(f"{k}={v}" for k, v in cookies.items())
    studies = world.get(None, "/dicomweb/studies", headers={"Cookie": header})
    assert studies.status_code == 200
    success = world.events("login.success")[-1]
    assert success.actor.device_id == cookies["pacsguard_device"]


def test_current_session_and_sign_out(world: World) -> None:
    with_password(world, "bob")
    cookies = cookies_of(sign_in(world, "bob"))
    header = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
    current = world.get(None, "/api/v1/sessions/current", headers=header)
    assert current.status_code == 200
    assert current.json()["principal_id"] == "bob"
    out = world.request(None, "DELETE", "/api/v1/sessions/current", headers=header)
    assert out.status_code == 204
    assert world.get(None, "/api/v1/sessions/current", headers=header).status_code == 401
    assert world.get(None, "/dicomweb/studies", headers=header).status_code == 401
    assert world.events("session.revoked")[-1].detail["reason"] == "sign-out"


def test_every_bad_sign_in_gets_the_same_answer_and_is_audited(world: World) -> None:
    with_password(world, "alice")
    with_password(world, "eve")
    world.site.directory.principals.lock("eve", reason="investigation", by=OPERATOR)
    answers = [
        sign_in(world, "alice", "wrong-password-1"),
        sign_in(world, "nobody-here"),
        sign_in(world, "eve"),  # the right password on a locked account
    ]
    assert {r.status_code for r in answers} == {401}
    assert {r.text for r in answers} == {answers[0].text}
    assert answers[0].json() == {"error": REFUSED}
    assert "set-cookie" not in answers[2].headers
    reasons = [e.detail.get("reason") for e in world.events("login.failure")[-3:]]
    assert reasons == ["bad_password", "unknown_user", "locked"]


def test_an_enrolled_account_needs_its_code_and_then_signs_in_two_factor(world: World) -> None:
    with_password(world, "alice")
    enrolment = world.site.directory.auth.enroll_totp("alice", by=OPERATOR)
    first = sign_in(world, "alice")
    assert first.status_code == 401
    assert first.json()["mfa_required"] is True
    code = pyotp.TOTP(enrolment.secret).at(world.site.clock.now())
    second = sign_in(world, "alice", code=code)
    assert second.status_code == 201, second.text
    assert second.json()["auth_strength"] == 2
    replayed = sign_in(world, "alice", code=code)
    assert replayed.status_code == 401
    assert replayed.json() == {"error": REFUSED}


def test_a_malformed_sign_in_is_a_400_naming_the_field(world: World) -> None:
    response = world.request(None, "POST", "/api/v1/sessions", json={"username": "alice"})
    assert response.status_code == 400
    assert any(p["field"].endswith("password") for p in response.json()["problems"])
    not_json = world.request(
        None, "POST", "/api/v1/sessions", content=b"{oops", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 400


def test_current_session_needs_a_session_not_a_token(world: World) -> None:
    token = world.site.directory.tokens.issue("alice", name="api", scopes=["api"], by=OPERATOR).secret
    response = world.get(None, "/api/v1/sessions/current", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400
    assert "session cookie" in response.json()["error"]
