"""Shared pieces of the command line: the ``--site`` option and the one place where
exceptions become messages and exit codes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from pacsguard import config
from pacsguard.errors import ConfigError, PacsguardError

F = TypeVar("F", bound=Callable[..., Any])

err_console = Console(stderr=True, highlight=False)
console = Console(highlight=False)


def site_option(func: F) -> F:
    """``--site DIR``, defaulting to ``$PACSGUARD_SITE``, then the current directory."""
    return click.option(
        "--site",
        "site",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Site directory (default: $PACSGUARD_SITE, then the current directory).",
    )(func)


def load_settings(site: Path | None) -> config.Settings:
    return config.load(config.resolve_site(site))


def run_guarded(command: click.Command, argv: list[str]) -> int:
    """Run ``command``; print pacsguard errors plainly and return the exit code."""
    try:
        command.main(args=argv, prog_name="pacsguard", standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("aborted")
        return 1
    except click.ClickException as exc:
        exc.show()
        return 2 if exc.exit_code == 2 else exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except ConfigError as exc:
        err_console.print("[bold red]error:[/] the site configuration is not valid:")
        for problem in exc.problems:
            err_console.print(f"  {problem}", markup=False)
        return exc.exit_code
    except PacsguardError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", markup=True)
        return exc.exit_code
    return 0
