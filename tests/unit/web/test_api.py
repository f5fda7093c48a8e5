"""The JSON API's frame: authentication with the ``api`` scope, errors, OpenAPI."""

from __future__ import annotations

from pacsguard.directory import PrincipalKind
from tests.world import OPERATOR, World


def api_token(world: World, who: str) -> str:
    return world.site.directory.tokens.issue(who, name="api", scopes=["api"], by=OPERATOR).secret


def test_me_names_the_caller_and_their_roles(world: World) -> None:
    token = api_token(world, "alice")
    response = world.get(None, "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["principal_id"] == "alice"
    assert body["zone"] == "north"
    assert [r["role"] for r in body["roles"]] == ["north/radiologist"]


def test_a_dicomweb_token_is_refused_by_the_api_and_the_refusal_audited(world: World) -> None:
    response = world.get("alice", "/api/v1/me")
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    refused = world.events("token.rejected")
    assert refused[-1].detail["reason"] == "scope"


def test_no_credentials_get_401_with_a_challenge(world: World) -> None:
    response = world.get(None, "/api/v1/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="pacsguard"'
    assert response.json() == {"error": "authentication required"}


def test_a_malformed_authorization_header_is_audited(world: World) -> None:
    response = world.get(None, "/api/v1/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert response.status_code == 401
    assert world.events("token.rejected")[-1].detail["reason"] == "malformed_header"


def test_a_deleted_principal_is_refused_as_invalid(world: World) -> None:
    d = world.site.directory
    d.principals.create("temp", kind=PrincipalKind.PERSON, display_name="Temp", zone="north", by=OPERATOR)
    token = api_token(world, "temp")
    d.principals.disable("temp", reason="left", by=OPERATOR)
    response = world.get(None, "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_openapi_document_lists_the_routes(world: World) -> None:
    response = world.get(None, "/api/openapi.json")
    assert response.status_code == 200
    assert "/v1/me" in response.json()["paths"]


def test_an_unknown_api_path_is_a_json_404(world: World) -> None:
    token = api_token(world, "alice")
    response = world.get(None, "/api/v1/nothing-here", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found"}


def test_no_credentials_on_the_api_are_audited_like_on_dicomweb(world: World) -> None:
    app = world.app  # one server: the per-address bound is the server's
    assert world.get(None, "/api/v1/me", app=app).status_code == 401
    assert world.get(None, "/dicomweb/studies", app=app).status_code == 401
    [refused] = world.events("access.denied")  # one event per address and reason a minute
    assert refused.detail["reason"] == "no_credentials"
    assert refused.detail["count"] == 1
    assert refused.actor.ip == "192.0.2.10"
