"""API tokens: opaque, hashed at rest, scoped, expiring, revocable."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from pacsguard.clock import FakeClock
from pacsguard.directory import Directory, Principal
from pacsguard.domain import RecordingSink
from pacsguard.errors import InvalidEntry, TokenError
from pacsguard.storage.directory_tables import api_tokens
from tests.unit.directory.conftest import OPERATOR


@pytest.fixture
def app(person: Callable[..., Principal]) -> str:
    person("viewer-sync", password=None)
    return "viewer-sync"


def reason_of(directory: Directory, secret: str, scope: str | None = None) -> str:
    with pytest.raises(TokenError) as caught:
        directory.tokens.validate(secret, scope=scope)
    return caught.value.reason


def test_a_token_is_opaque_and_hashed_at_rest(directory: Directory, app: str, engine: Engine) -> None:
    issued = directory.tokens.issue(app, name="sync", scopes=["query", "read"], by=OPERATOR)
    assert issued.secret.startswith("pgt_")
    assert len(issued.secret) > 40
    with engine.connect() as conn:
        row = conn.execute(select(api_tokens)).one()
    assert issued.secret not in (row.id, row.token_hash)
    assert directory.tokens.validate(issued.secret, scope="read").principal_id == app


def test_scope_expiry_and_revocation(directory: Directory, app: str, clock: FakeClock, events: RecordingSink) -> None:
    issued = directory.tokens.issue(app, name="sync", scopes=["query"], by=OPERATOR, expires_in=timedelta(days=1))
    assert reason_of(directory, issued.secret, scope="export") == "scope"
    clock.advance(days=1)
    assert reason_of(directory, issued.secret) == "expired"
    other = directory.tokens.issue(app, name="sync2", scopes=["query"], by=OPERATOR)
    assert directory.tokens.revoke(other.token.id, by=OPERATOR) is True
    assert directory.tokens.revoke(other.token.id, by=OPERATOR) is False
    assert reason_of(directory, other.secret) == "revoked"
    assert reason_of(directory, "pgt_guessed") == "unknown_token"
    assert reason_of(directory, "Bearer xyz") == "malformed"
    assert [e.detail["reason"] for e in events.of_type("token.rejected")] == [
        "scope",
        "expired",
        "revoked",
        "unknown_token",
        "malformed",
    ]
    assert events.types().count("token.created") == 2
    assert events.types().count("token.revoked") == 1


def test_revoke_all_is_idempotent(directory: Directory, app: str) -> None:
    tokens = [directory.tokens.issue(app, name=f"t{i}", scopes=["read"], by=OPERATOR) for i in range(3)]
    assert directory.tokens.revoke_all(app, by=OPERATOR) == 3
    assert directory.tokens.revoke_all(app, by=OPERATOR) == 0
    assert all(reason_of(directory, t.secret) == "revoked" for t in tokens)


def test_a_disabled_principals_tokens_stop(directory: Directory, app: str) -> None:
    issued = directory.tokens.issue(app, name="sync", scopes=["read"], by=OPERATOR)
    directory.principals.disable(app, by=OPERATOR)
    assert reason_of(directory, issued.secret) == "account_disabled"


def test_bad_token_requests(directory: Directory, app: str) -> None:
    with pytest.raises(InvalidEntry, match="scopes"):
        directory.tokens.issue(app, name="x", scopes=[], by=OPERATOR)
    with pytest.raises(InvalidEntry, match="scopes"):
        directory.tokens.issue(app, name="x", scopes=["Read Everything"], by=OPERATOR)
    with pytest.raises(InvalidEntry, match="365 days"):
        directory.tokens.issue(app, name="x", scopes=["read"], by=OPERATOR, expires_in=timedelta(days=400))
