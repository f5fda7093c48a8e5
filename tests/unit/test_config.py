from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pacsguard import config
from pacsguard.cli import main
from pacsguard.errors import ConfigError


def test_scaffolded_site_loads_with_documented_defaults(make_site: Callable[..., Path]) -> None:
    site = make_site()
    settings = config.load(site, environ={})
    assert settings.site == site.resolve()
    assert settings.auth.lockout.max_failures == 8
    assert settings.auth.lockout.window.total_seconds() == 600
    assert settings.auth.lockout.duration.total_seconds() == 900
    assert settings.database_url == f"sqlite:///{site.resolve() / 'pacsguard.db'}"
    for sub in ("policies", "agreements", "rules", "pki"):
        assert (site / sub).is_dir()


def test_settings_are_frozen(make_site: Callable[..., Path]) -> None:
    settings = config.load(make_site(), environ={})
    with pytest.raises(ValueError, match="frozen"):
        settings.name = "other"  # type: ignore[misc]


def test_environment_overrides_storage_url(make_site: Callable[..., Path]) -> None:
    settings = config.load(make_site(), environ={"PACSGUARD_STORAGE_URL": "postgresql+psycopg://x@h/db"})
    assert settings.database_url == "postgresql+psycopg://x@h/db"


def test_unknown_key_names_file_line_and_key(make_site: Callable[..., Path]) -> None:
    site = make_site()
    toml = site / "pacsguard.toml"
    toml.write_text(toml.read_text().replace("max_failures = 8", "max_failurez = 8"))
    with pytest.raises(ConfigError) as caught:
        config.load(site, environ={})
    (problem,) = caught.value.problems
    assert problem.key == "auth.lockout.max_failurez"
    assert problem.message == "unknown key"
    assert problem.line is not None
    assert toml.read_text().splitlines()[problem.line - 1].startswith("max_failurez")


def test_wrong_type_is_reported_with_expectation(make_site: Callable[..., Path]) -> None:
    site = make_site()
    toml = site / "pacsguard.toml"
    toml.write_text(toml.read_text().replace("max_failures = 8", 'max_failures = "eight"'))
    with pytest.raises(ConfigError, match=r"auth\.lockout\.max_failures.*integer"):
        config.load(site, environ={})


def test_toml_syntax_error_has_a_line(make_site: Callable[..., Path]) -> None:
    site = make_site()
    (site / "pacsguard.toml").write_text('name = "x"\n[storage\nurl = ""\n')
    with pytest.raises(ConfigError) as caught:
        config.load(site, environ={})
    assert caught.value.problems[0].line == 2


def test_missing_site_tells_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pacsguard init"):
        config.load(tmp_path, environ={})


def test_bad_config_exits_2_without_traceback(
    make_site: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site()
    (site / "pacsguard.toml").write_text("[server]\nport = -1\n")
    assert main(["config-check", "--site", str(site)]) == 2
    err = capsys.readouterr().err
    assert "server.port" in err
    assert "Traceback" not in err


def test_init_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["init", str(tmp_path)]) == 2
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_resolve_site_order(tmp_path: Path) -> None:
    assert config.resolve_site(tmp_path / "a", {"PACSGUARD_SITE": str(tmp_path / "b")}) == tmp_path / "a"
    assert config.resolve_site(None, {"PACSGUARD_SITE": str(tmp_path / "b")}) == tmp_path / "b"
    assert config.resolve_site(None, {}) == Path.cwd()
