"""The ``plamo-fast`` command line. Heavy modules are imported inside each command so that
``--help`` stays fast and torch is never imported by the base commands."""

from __future__ import annotations

import os
import sys

import typer

from plamo_fast.cli import curate as curate_commands
from plamo_fast.cli import demo as demo_command
from plamo_fast.cli import env as env_command
from plamo_fast.cli import eval as eval_commands
from plamo_fast.cli import merge as merge_command
from plamo_fast.cli import onpolicy as onpolicy_commands
from plamo_fast.cli import pack as pack_command
from plamo_fast.cli import recipe as recipe_commands
from plamo_fast.cli import synth as synth_commands
from plamo_fast.cli import train as train_commands
from plamo_fast.cli import translate as translate_command

app = typer.Typer(
    name="plamo-fast",
    help="Fast post-training toolkit for LLMs: decontaminate (benchmark leak filter) and dedup "
    "training data, pack SFT/DPO data (chat template, response-only labels, best-fit packing), "
    "SFT and DPO on packed rows (accelerate), on-policy pairs (sample, score, pairs), and merge "
    "checkpoints (SLERP / linear).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: rich's tables cut long option names at 80 columns ("--min-contained…").
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from plamo_fast import __version__

        typer.echo(f"plamo-fast {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Fast post-training toolkit for LLMs."""


app.command("merge", no_args_is_help=True)(merge_command.merge)
app.command("pack", no_args_is_help=True)(pack_command.pack)
app.command("decontaminate", no_args_is_help=True)(curate_commands.decontaminate)
app.command("dedup", no_args_is_help=True)(curate_commands.dedup)
app.command("sft", no_args_is_help=True, context_settings=train_commands.CONTEXT)(
    train_commands.sft
)
app.command("dpo", no_args_is_help=True, context_settings=train_commands.CONTEXT)(
    train_commands.dpo
)
app.command("sample", no_args_is_help=True)(onpolicy_commands.sample)
app.command("score", no_args_is_help=True)(onpolicy_commands.score)
app.command("pairs", no_args_is_help=True)(onpolicy_commands.pairs)
app.command("translate", no_args_is_help=True)(translate_command.translate)
app.command("demo")(demo_command.demo)
app.command("env")(env_command.env)
app.add_typer(eval_commands.app, name="eval")
app.add_typer(synth_commands.app, name="synth")
app.add_typer(recipe_commands.app, name="recipe")


def _cli_errors() -> tuple[type[BaseException], ...]:
    """Usage errors raised by typer (which vendors click in recent versions, and uses the click
    package in older ones)."""
    errors: list[type[BaseException]] = []
    if hasattr(typer, "TyperException"):
        errors.append(typer.TyperException)
    try:
        import click

        errors.append(click.ClickException)
    except ImportError:
        pass
    return tuple(errors)


def _user_errors() -> tuple[type[BaseException], ...]:
    from plamo_fast.errors import PlamoFastError

    return (PlamoFastError, OSError, ValueError)


def main(argv: list[str] | None = None) -> int:
    """Entry point: one readable line per error on stderr (traceback with PLAMO_FAST_DEBUG=1);
    exit 1 for errors, 2 for usage errors, 130 for Ctrl-C."""
    debug = os.environ.get("PLAMO_FAST_DEBUG", "") not in ("", "0")
    try:
        # Without standalone mode typer returns the exit code of typer.Exit and of Ctrl-C (130)
        # instead of calling sys.exit, and lets every other exception reach us.
        code = app(args=argv, prog_name="plamo-fast", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except (KeyboardInterrupt, typer.Abort):
        print("plamo-fast: interrupted", file=sys.stderr)
        return 130
    except _cli_errors() as exc:
        exc.show()
        return exc.exit_code
    except _user_errors() as exc:
        if debug:
            raise
        # Under a distributed launch every process reports, each with its rank, in one write
        # (so the lines of two processes never interleave).
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = f" (rank {os.environ.get('RANK', '?')})" if world > 1 else ""
        sys.stderr.write(f"plamo-fast: error{rank}: {exc}\n")
        sys.stderr.flush()
        return 1
    if code == 130:
        print("plamo-fast: interrupted", file=sys.stderr)
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
