"""Fixtures shared by every test: clocks, event recorders, scaffolded sites."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pacsguard.cli import main
from pacsguard.clock import FakeClock
from pacsguard.domain.events import RecordingSink


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def events() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def make_site(tmp_path: Path) -> Callable[..., Path]:
    """A factory: scaffold a site with ``pacsguard init`` and return its directory."""

    def make(name: str = "site", **files: str) -> Path:
        site = tmp_path / name
        assert main(["init", str(site)]) == 0
        for relative, text in files.items():
            (site / relative.replace("__", "/")).write_text(text)
        return site

    return make
