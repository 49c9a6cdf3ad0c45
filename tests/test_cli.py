"""The command line as a whole: --version, and help that a user can read at 80 columns."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from plamo_fast import __version__
from plamo_fast.cli import app, main


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"plamo-fast {__version__}"


def _commands() -> dict:
    group = typer.main.get_command(app)
    return group.commands


@pytest.mark.parametrize("name", sorted(_commands()))
def test_help_shows_whole_option_names_at_80_columns(name):
    env = {"COLUMNS": "80", "TERM": "dumb", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "plamo_fast.cli", name, "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert "…" not in out
    for param in _commands()[name].params:
        for option in [*param.opts, *param.secondary_opts]:
            if option.startswith("--"):
                assert option in out, f"{name} --help at 80 columns lacks {option}"
    assert max(len(line) for line in out.splitlines()) <= 80
