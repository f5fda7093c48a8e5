"""Creating, listing and revoking share links through ``/api/v1/shares``."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.unit.gateway.shares.conftest import Shares, path_of


def test_a_created_link_returns_its_url_once_and_is_audited(shares: Shares) -> None:
    created = shares.create(recipient=None, days=2, max_opens=3)
    token = path_of(created).rsplit("/", 1)[1]
    assert len(token) == 43
    assert created["state"] == "live"
    assert created["max_opens"] == 3
    assert datetime.fromisoformat(created["expires_at"]) == shares.clock.now() + timedelta(days=2)
    listed = shares.call("alice", "GET", "/api/v1/shares").json()
    assert [s["id"] for s in listed] == [created["id"]]
    assert token not in str(listed)
    assert "url" not in listed[0]
    (event,) = shares.world.events("share.created")
    assert event.actor.principal_id == "alice"
    assert event.objects.share_id == created["id"]
    assert event.detail["studies"] == [shares.world.studies["N1"].study_uid]
    assert event.detail["expires_at"] == created["expires_at"].replace("Z", "+00:00")


def test_the_token_is_stored_only_as_its_hash(shares: Shares) -> None:
    from sqlalchemy import select

    from pacsguard.storage.share_tables import shares as table

    created = shares.create()
    token = path_of(created).rsplit("/", 1)[1]
    with shares.world.site.engine.connect() as conn:
        row = conn.execute(select(table)).one()
    assert token not in str(tuple(row))
    assert len(row.token_hash) == 64


def test_defaults_and_limits_come_from_the_settings(shares: Shares) -> None:
    created = shares.create()
    assert datetime.fromisoformat(created["expires_at"]) == shares.clock.now() + timedelta(days=7)
    assert created["max_opens"] == 10
    too_long = shares.call("alice", "POST", "/api/v1/shares",
                           json={"studies": [shares.world.studies["N1"].study_uid], "days": 31})  # fmt: skip
    assert too_long.status_code == 400
    assert "max_days" in too_long.json()["error"]
    too_many = shares.call("alice", "POST", "/api/v1/shares",
                           json={"studies": [shares.world.studies["N1"].study_uid], "max_opens": 101})  # fmt: skip
    assert too_many.status_code == 400
    short = shares.call("alice", "POST", "/api/v1/shares",
                        json={"studies": [shares.world.studies["N1"].study_uid], "passcode": "short"})  # fmt: skip
    assert short.status_code == 400
    assert "passcode" in short.json()["error"]


def test_denied_and_unknown_studies_are_refused_alike_and_audited(shares: Shares) -> None:
    w = shares.world
    answers = {}
    for name, uid in (("secret", w.studies["N2"].study_uid), ("other zone", w.studies["S1"].study_uid),
                      ("unknown", "1.2.3.4.5.6.7")):  # fmt: skip
        response = shares.call("alice", "POST", "/api/v1/shares", json={"studies": [w.studies["N1"].study_uid, uid]})
        answers[name] = (response.status_code, response.json()["error"].replace(uid, "UID"))
    assert set(answers.values()) == {(404, "no study 'UID'")}
    denied = [e for e in w.events("access.denied") if e.detail.get("action") == "share"]
    assert [e.detail["reason"] for e in denied] == ["denied", "denied", "unknown"]
    assert w.events("share.created") == []


def test_a_recipient_needs_a_mail_relay(shares: Shares) -> None:
    body = {"studies": [shares.world.studies["N1"].study_uid], "recipient": "gp@example.org"}
    response = shares.call("alice", "POST", "/api/v1/shares", json=body)
    assert response.status_code == 400
    assert "[shares.smtp]" in response.json()["error"]


def test_the_creator_revokes_one_link_and_others_cannot(shares: Shares) -> None:
    created = shares.create()
    assert shares.call("bob", "DELETE", f"/api/v1/shares/{created['id']}").status_code == 404
    revoked = shares.call("alice", "DELETE", f"/api/v1/shares/{created['id']}")
    assert revoked.status_code == 200
    assert revoked.json()["state"] == "revoked"
    again = shares.call("alice", "DELETE", f"/api/v1/shares/{created['id']}")
    assert again.status_code == 200
    (event,) = shares.world.events("share.revoked")
    assert event.objects.share_id == created["id"]
    assert event.actor.principal_id == "alice"
    assert shares.visit(path_of(created)).status_code == 404


def test_an_officer_revokes_anyones_link(shares: Shares) -> None:
    created = shares.create()
    assert shares.call("olga", "DELETE", f"/api/v1/shares/{created['id']}").json()["revoked_by"] == "olga"


def test_revoke_all_ends_every_open_link_of_the_caller(shares: Shares) -> None:
    links = [shares.create() for _ in range(3)]
    shares.call("alice", "DELETE", f"/api/v1/shares/{links[0]['id']}")
    response = shares.call("alice", "POST", "/api/v1/shares/revoke-all", json={})
    assert response.json() == {"revoked": 2}
    assert len(shares.world.events("share.revoked")) == 3
    assert all(shares.visit(path_of(link), fresh=True).status_code == 404 for link in links)


def test_revoke_all_of_another_principal_needs_an_officer(shares: Shares) -> None:
    shares.create()
    assert shares.call("bob", "POST", "/api/v1/shares/revoke-all", json={"principal": "alice"}).status_code == 403
    assert shares.call("bob", "GET", "/api/v1/shares?principal=alice").status_code == 403
    assert shares.call("olga", "POST", "/api/v1/shares/revoke-all", json={"principal": "alice"}).json() == {
        "revoked": 1
    }
    assert [s["state"] for s in shares.call("olga", "GET", "/api/v1/shares?principal=alice").json()] == ["revoked"]


def test_a_bad_body_is_a_400(shares: Shares) -> None:
    assert shares.call("alice", "POST", "/api/v1/shares", json={"studies": []}).status_code == 400
    assert shares.call("alice", "POST", "/api/v1/shares", json={"studies": ["1.2"], "extra": 1}).status_code == 400
    bad_uid = shares.call("alice", "POST", "/api/v1/shares", json={"studies": ["not a uid"]})
    assert bad_uid.status_code == 400
