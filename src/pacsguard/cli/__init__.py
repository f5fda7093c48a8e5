"""The ``pacsguard`` command. Exit codes: 0 success, 1 a finding (a failed check),
2 bad input. Errors are printed as one clear message, never as a traceback."""

from __future__ import annotations

import sys

import click

from pacsguard import __version__
from pacsguard.cli import archive, audit, consent, monitor, pki, policy, serve, site, users
from pacsguard.cli._common import run_guarded

__all__ = ["main", "pacsguard"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pacsguard")
def pacsguard() -> None:
    """Privilege management, access control, audit and threat detection in front of PACS."""


pacsguard.add_command(site.init)
pacsguard.add_command(site.check_config)
pacsguard.add_command(site.demo)
pacsguard.add_command(pki.pki)
pacsguard.add_command(archive.archive)
pacsguard.add_command(users.users)
pacsguard.add_command(monitor.monitor)
pacsguard.add_command(policy.policy)
pacsguard.add_command(consent.consent)
pacsguard.add_command(audit.audit)
pacsguard.add_command(serve.serve)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the command, turning pacsguard errors into messages and exit codes."""
    return run_guarded(pacsguard, sys.argv[1:] if argv is None else argv)
