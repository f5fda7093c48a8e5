"""The recipient's side: expiry to the microsecond, the open limit, the passcode, one
refusal for every dead link, a link for study X refused for study Y."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx

from tests.unit.gateway.shares.conftest import Shares, path_of


def _refusal(response: httpx.Response) -> tuple[int, str, str | None, str | None]:
    return response.status_code, response.text, response.headers.get("content-type"), response.headers.get("set-cookie")


def test_a_link_is_valid_until_just_before_its_expiry(shares: Shares) -> None:
    created = shares.create(days=1)
    expires = datetime.fromisoformat(created["expires_at"])
    shares.clock.set(expires - timedelta(microseconds=1))
    page = shares.visit(path_of(created), fresh=True)
    assert page.status_code == 200, page.text
    assert shares.world.studies["N1"].study_uid in page.text
    shares.clock.set(expires)
    assert shares.visit(path_of(created), fresh=True).status_code == 404
    # an open session ends with the link too
    assert shares.visit(path_of(created)).status_code == 404


def test_the_open_limit_allows_n_opens_and_refuses_the_next(shares: Shares) -> None:
    created = shares.create(max_opens=3)
    for _ in range(3):
        assert shares.visit(path_of(created), fresh=True).status_code == 200
    assert shares.visit(path_of(created), fresh=True).status_code == 404
    assert shares.call("alice", "GET", "/api/v1/shares").json()[0]["state"] == "used_up"
    (expired,) = shares.world.events("share.expired")
    assert expired.detail["reason"] == "used_up"
    shares.visit(path_of(created), fresh=True)
    assert len(shares.world.events("share.expired")) == 1  # recorded once


def test_an_open_session_may_reload_without_counting(shares: Shares) -> None:
    created = shares.create(max_opens=1)
    assert shares.visit(path_of(created), fresh=True).status_code == 200
    assert shares.visit(path_of(created)).status_code == 200  # same browser, same open
    assert shares.visit(path_of(created), fresh=True).status_code == 404


def test_dead_links_all_get_the_same_refusal(shares: Shares) -> None:
    w = shares.world
    expired, revoked, used_up = shares.create(days=1), shares.create(), shares.create(max_opens=1)
    shares.call("alice", "DELETE", f"/api/v1/shares/{revoked['id']}")
    shares.visit(path_of(used_up), fresh=True)
    shares.clock.advance(days=1)
    unknown = "/share/" + "A" * 43
    malformed = "/share/not-a-token"
    answers = [
        _refusal(shares.visit(p, fresh=True))
        for p in (path_of(expired), path_of(revoked), path_of(used_up), unknown, malformed)
    ]
    answers += [_refusal(shares.visit(path_of(expired) + "/preview/1.2.3.png", fresh=True))]
    answers += [_refusal(shares.visit(unknown, "POST", data={"action": "passcode"}, fresh=True))]
    assert len(set(answers)) == 1
    status, body, kind, cookie = answers[0]
    assert (status, kind, cookie) == (404, "text/html; charset=utf-8", None)
    assert "cannot be opened" in body
    reasons = [e.detail["reason"] for e in w.events("share.opened") if e.outcome == "denied"]
    assert reasons == ["expired", "revoked", "used_up", "unknown", "malformed", "expired", "unknown"]


def test_a_passcode_gates_the_link(shares: Shares) -> None:
    created = shares.create(passcode="correct horse")
    gate = shares.visit(path_of(created), fresh=True)
    assert gate.status_code == 200
    assert 'name="passcode"' in gate.text
    assert shares.world.studies["N1"].study_uid not in gate.text
    wrong = shares.form(path_of(created), action="passcode", passcode="wrong horse")
    assert wrong.status_code == 403
    right = shares.form(path_of(created), action="passcode", passcode="correct horse")
    assert right.status_code == 303
    cookie = right.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert f"path={path_of(created).lower()}" in cookie
    page = shares.visit(path_of(created))
    assert shares.world.studies["N1"].study_uid in page.text
    failures = [e for e in shares.world.events("share.opened") if e.outcome == "failure"]
    assert [e.detail["failures"] for e in failures] == [1]


def test_wrong_passcodes_lock_the_link(shares: Shares) -> None:
    created = shares.create(passcode="correct horse")
    for attempt in range(1, 5):
        assert shares.form(path_of(created), action="passcode", passcode=f"guess {attempt}").status_code == 403
    locked = shares.form(path_of(created), action="passcode", passcode="guess 5")
    assert locked.status_code == 404
    assert shares.visit(path_of(created), fresh=True).status_code == 404  # locked for good
    (event,) = shares.world.events("share.revoked")
    assert event.detail["by"] == "share:attempts"
    assert shares.call("alice", "GET", "/api/v1/shares").json()[0]["state"] == "locked"


def test_a_form_without_its_token_is_refused(shares: Shares) -> None:
    created = shares.create(passcode="correct horse")
    response = shares.visit(path_of(created), "POST", data={"action": "passcode", "passcode": "correct horse"})
    assert response.status_code == 400
    assert "set-cookie" not in response.headers


def test_a_cookie_of_one_link_does_not_open_another(shares: Shares) -> None:
    first, second = shares.create(passcode="correct horse"), shares.create(passcode="other horse!")
    assert shares.form(path_of(first), action="passcode", passcode="correct horse").status_code == 303
    assert shares.cookies  # the browser sends the first link's cookie to the second
    assert 'name="passcode"' in shares.visit(path_of(second)).text


def test_a_link_for_study_x_refuses_study_y(shares: Shares) -> None:
    w = shares.world
    created = shares.create(studies=("N1",))
    assert shares.visit(path_of(created), fresh=True).status_code == 200
    own = shares.visit(f"{path_of(created)}/preview/{w.studies['N1'].study_uid}.png")
    assert own.status_code == 200
    for other in ("N2", "S1"):
        uid = w.studies[other].study_uid
        assert shares.visit(f"{path_of(created)}/preview/{uid}.png").status_code == 404
    refused = [e for e in w.events("share.opened") if e.outcome == "denied"]
    assert [e.detail["reason"] for e in refused] == ["study not shared", "study not shared"]


def test_previews_need_an_open_session(shares: Shares) -> None:
    created = shares.create()
    uid = shares.world.studies["N1"].study_uid
    assert shares.visit(f"{path_of(created)}/preview/{uid}.png", fresh=True).status_code == 404


def test_each_open_is_an_event_with_the_recipient_side(shares: Shares) -> None:
    created = shares.create(max_opens=2)
    shares.visit(path_of(created), fresh=True, headers={"User-Agent": "recipient-browser"})
    (opened,) = [e for e in shares.world.events("share.opened") if e.outcome == "success"]
    assert opened.detail["what"] == "page"
    assert opened.objects.share_id == created["id"]
    assert opened.actor.principal_id is None
    assert opened.actor.user_agent == "recipient-browser"
    assert opened.detail["studies"] == [shares.world.studies["N1"].study_uid]
    assert opened.detail["creator"] == "alice"


def test_pages_carry_protective_headers(shares: Shares) -> None:
    page = shares.visit(path_of(shares.create()), fresh=True)
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
