"""Fixtures shared by every test: clocks, event recorders, scaffolded sites."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pacsguard.cli import main
from pacsguard.clock import FakeClock
from pacsguard.domain.events import RecordingSink
from pacsguard.storage import make_engine, migrate
from tests.orthanc import OrthancFactory, OrthancServer
from tests.postgres import PostgresServer, running_postgres


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


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the whole test session."""
    with running_postgres() as server:
        yield server


_db_counter = itertools.count()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database URL: once SQLite in a temporary file, once a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'pacsguard.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"test_{next(_db_counter)}")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated engine on each backend."""
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def orthanc_factory() -> Iterator[OrthancFactory]:
    """Real Orthanc servers (DICOMweb plugin), one per name, for the whole session."""
    with contextlib.ExitStack() as stack:
        yield OrthancFactory(stack)


@pytest.fixture
def orthanc(orthanc_factory: OrthancFactory) -> OrthancServer:
    """The session's Orthanc, emptied for this test."""
    server = orthanc_factory("zone-a")
    server.clear()
    return server
