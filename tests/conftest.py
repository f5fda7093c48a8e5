"""Fixtures shared by every test: clocks, event recorders, scaffolded sites."""

from __future__ import annotations

import contextlib
import io
import itertools
import shutil
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


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """Per backend, one database migrated once per session, for tests to start from a copy.

    Returns a function of the backend name giving the template: an SQLite file path, or
    the name of a PostgreSQL template database.
    """
    made: dict[str, str] = {}

    def template(backend: str, server: PostgresServer | None = None) -> str:
        if backend not in made:
            if server is None:
                path = tmp_path_factory.mktemp("template") / "migrated.db"
                url = f"sqlite:///{path}"
                made[backend] = str(path)
            else:
                url = server.create_database("migrated_template")
                made[backend] = "migrated_template"
            engine = make_engine(url)
            migrate(engine)
            engine.dispose()
        return made[backend]

    return template


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, migrated_template: Callable[..., str]) -> str:
    """A migrated database for this test alone: an SQLite file, or a PostgreSQL database,
    each copied from a template migrated once per session."""
    if request.param == "sqlite":
        path = tmp_path / "pacsguard.db"
        shutil.copyfile(migrated_template("sqlite"), path)
        return f"sqlite:///{path}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"test_{next(_db_counter)}", template=migrated_template("postgres", server))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated engine on each backend (``migrate`` finds nothing left to do)."""
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


PASSWORD = "Correct-horse-42"


@pytest.fixture
def add_person(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """A factory: ``add_person(site, "alice", "north", "radiologist", ...)`` adds a person
    through the real ``pacsguard users add`` (password ``PASSWORD`` on stdin) and grants
    each role as the site operator."""

    def add(site: Path, principal_id: str, zone: str, *roles: str) -> None:
        monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
        argv = ["users", "add", principal_id, "--zone", zone, "--password-stdin", "--site", str(site)]
        assert main(argv) == 0
        for role in roles:
            assert main(["users", "grant", principal_id, role, "--site", str(site)]) == 0

    return add
