"""The migrated share-link schema matches the table definitions, on both backends; the
``[shares]`` settings validate with errors that name the key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, MetaData, inspect

from pacsguard import config
from pacsguard.errors import ConfigError
from pacsguard.storage import metadata
from pacsguard.storage.share_tables import SHARE_TABLES

MINE = {t.name for t in SHARE_TABLES}


def _only_share_tables(name: str | None, type_: str, _parents: object) -> bool:
    return type_ != "table" or name in MINE


def test_migration_creates_every_share_table(engine: Engine) -> None:
    assert set(inspect(engine).get_table_names()) >= MINE


def test_migrated_schema_matches_the_metadata(engine: Engine) -> None:
    mine = MetaData(naming_convention=metadata.naming_convention)
    for table in SHARE_TABLES:
        table.to_metadata(mine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": _only_share_tables})
        diff = compare_metadata(context, mine)
    assert diff == []


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[shares]\ndefault_days = 40\n", "shares.default_days"),
        ("[shares]\nmax_days = 3\n", "shares.default_days"),
        ("[shares]\ndefault_max_opens = 0\n", "shares.default_max_opens"),
        ("[shares]\nmax_opens_limit = 5\ndefault_max_opens = 6\n", "shares.default_max_opens"),
        ("[shares.smtp]\nport = 0\n", "shares.smtp.port"),
        ('[shares.smtp]\nsender = "nobody"\n', "shares.smtp.sender"),
        ("[shares]\ncode_ttl = 5\n", "shares.code_ttl"),
    ],
)
def test_bad_share_settings_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    (tmp_path / "pacsguard.toml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        config.load(tmp_path)
    assert [p.key for p in caught.value.problems] == [key]


def test_the_scaffolded_settings_are_the_defaults(make_site: Callable[..., Path]) -> None:
    site = make_site()
    assert config.load(site).shares == config.ShareSettings()
