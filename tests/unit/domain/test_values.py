from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pacsguard.clock import FakeClock
from pacsguard.domain import AuditEvent, EventBus, RecordingSink, RoleRef, Validity

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def test_validity_is_half_open() -> None:
    v = Validity(T0, T0 + timedelta(hours=1))
    assert not v.contains(T0 - timedelta(microseconds=1))
    assert v.contains(T0)
    assert v.contains(T0 + timedelta(minutes=59, seconds=59))
    assert not v.contains(T0 + timedelta(hours=1))


def test_validity_refuses_inverted_period() -> None:
    with pytest.raises(ValueError, match="must end after"):
        Validity(T0, T0)


def test_within_never_outlives_the_outer_period() -> None:
    inner = Validity(T0 - timedelta(days=1), T0 + timedelta(days=9))
    outer = Validity(T0, T0 + timedelta(days=2))
    assert inner.within(outer) == outer
    assert Validity().within(outer) == outer


def test_fake_clock_moves_only_forward() -> None:
    clock = FakeClock(T0)
    assert clock.advance(minutes=10) == T0 + timedelta(minutes=10)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(timedelta(seconds=-1))


def test_role_ref_parse() -> None:
    assert RoleRef.parse("north/radiologist") == RoleRef("north", "radiologist")
    assert RoleRef.parse("radiologist", "south") == RoleRef("south", "radiologist")
    with pytest.raises(ValueError, match="zone/name"):
        RoleRef.parse("radiologist")
    with pytest.raises(ValueError, match="zone/name"):
        RoleRef.parse("/x")


def test_bus_fans_out_in_order_and_propagates_failure() -> None:
    first, second = RecordingSink(), RecordingSink()
    bus = EventBus(first, second)
    event = AuditEvent("login.success", T0)
    bus.emit(event)
    assert first.events == [event]
    assert second.events == [event]

    def broken(_: AuditEvent) -> None:
        raise RuntimeError("log full")

    bus.subscribe(broken)
    with pytest.raises(RuntimeError, match="log full"):
        bus.emit(event)
