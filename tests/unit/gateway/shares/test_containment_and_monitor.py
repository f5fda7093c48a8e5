"""Share links meet the monitor: containment's ``expire_shares`` and its undo, and the
default share rules firing on real ``share.created`` events."""

from __future__ import annotations

from pacsguard.gateway.shares import ShareStore
from pacsguard.monitor import Engine, load_rules
from pacsguard.monitor.containment import Containment, IpBlocks
from tests.unit.gateway.shares.conftest import Mailbox, Shares, path_of


def _containment(shares: Shares) -> Containment:
    site = shares.world.site
    store = ShareStore(site.engine, site.clock)
    return Containment(site.directory, IpBlocks(site.engine), site.audit, site.clock, shares=store)


def test_expire_shares_ends_the_live_links_and_undo_brings_back_exactly_those(shares: Shares) -> None:
    live = [shares.create(), shares.create()]
    revoked = shares.create()
    shares.call("alice", "DELETE", f"/api/v1/shares/{revoked['id']}")
    contain = _containment(shares)
    assert contain.apply("expire_shares", "alice", ordered_by="rule:share.spree", reason="share spree")
    assert not contain.apply("expire_shares", "alice", ordered_by="olga", reason="again")  # idempotent
    assert all(shares.visit(path_of(link), fresh=True).status_code == 404 for link in live)
    states = {s["id"]: s["state"] for s in shares.call("alice", "GET", "/api/v1/shares").json()}
    assert states == {live[0]["id"]: "contained", live[1]["id"]: "contained", revoked["id"]: "revoked"}
    assert contain.undo("expire_shares", "alice", officer="olga")
    assert all(shares.visit(path_of(link), fresh=True).status_code == 200 for link in live)
    assert shares.visit(path_of(revoked), fresh=True).status_code == 404
    types = [e.type for e in shares.world.events() if e.type.startswith("containment.")]
    assert types == ["containment.shares_expired", "containment.undone"]


def test_containment_also_ends_an_open_session(shares: Shares) -> None:
    link = shares.create(max_opens=1)
    assert shares.visit(path_of(link), fresh=True).status_code == 200
    _containment(shares).apply("expire_shares", "alice", ordered_by="olga", reason="incident")
    assert shares.visit(path_of(link)).status_code == 404


def test_a_share_spree_fires_the_monitor_rule(shares: Shares) -> None:
    for _ in range(10):
        shares.create()
    assert _share_alerts(shares) == []
    shares.create()
    fired = [a for a in Engine(load_rules(None)).run(shares.world.events()) if a.rule_id.startswith("share.")]
    assert [a.rule_id for a in fired] == ["share.spree"]
    assert fired[0].subject == "actor.principal_id=alice"
    assert "expire_shares" in fired[0].actions


def test_many_external_recipients_fire_the_recipients_rule(shares: Shares, smtp: Mailbox) -> None:
    shares.with_settings(smtp.settings())
    for n in range(5):
        shares.create(recipient=f"r{n}@example.org")
    shares.create()  # no recipient: not an external recipient
    assert _share_alerts(shares) == []
    shares.create(recipient="r5@example.org")
    assert _share_alerts(shares) == ["share.recipients-rise"]


def _share_alerts(shares: Shares) -> list[str]:
    """The share rules that fire over the whole audit log (seeding fires admin rules)."""
    return [a.rule_id for a in Engine(load_rules(None)).run(shares.world.events()) if a.rule_id.startswith("share.")]
