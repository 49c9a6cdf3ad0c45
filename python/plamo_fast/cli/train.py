"""``plamo-fast sft`` and ``plamo-fast dpo``."""

from __future__ import annotations

from pathlib import Path

import typer

CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True}


def _run(kind: str, config: Path | None, ctx: typer.Context, quiet: bool, example: bool) -> None:
    if example:
        from plamo_fast.train.config import example_config

        typer.echo(example_config(kind), nl=False)
        return
    if config is None:
        raise typer.BadParameter(
            f"missing (plamo-fast {kind} --example-config prints one)", param_hint="CONFIG"
        )
    from plamo_fast.model_paths import require_transformers

    require_transformers(f"plamo-fast {kind}", also=("accelerate",))
    from plamo_fast.train.api import train

    outputs = train(config, kind, list(ctx.args), progress=not quiet)
    for out in outputs:
        typer.echo(str(out))


CONFIG_HELP = (
    "YAML config (--example-config prints one with every key); then KEY=VALUE overrides such "
    "as stages.0.optim.lr=2e-5."
)
QUIET_HELP = "No progress bar, nor progress lines when stderr is not a terminal."
EXAMPLE_HELP = "Print a commented config with every key, its default and meaning, and exit."


def sft(
    ctx: typer.Context,
    config: Path = typer.Argument(None, help=CONFIG_HELP, show_default=False),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
    example: bool = typer.Option(False, "--example-config", help=EXAMPLE_HELP),
) -> None:
    """Supervised fine-tuning on packed rows, loss on responses only; stages run in order.
    Multi-GPU: `accelerate launch --config_file configs/accelerate/X.yaml -m plamo_fast.cli sft`."""
    _run("sft", config, ctx, quiet, example)


def dpo(
    ctx: typer.Context,
    config: Path = typer.Argument(None, help=CONFIG_HELP, show_default=False),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
    example: bool = typer.Option(False, "--example-config", help=EXAMPLE_HELP),
) -> None:
    """DPO (sigmoid or IPO, optional SFT term) on packed pair rows; reference log-probs are
    computed once before training unless reference: live."""
    _run("dpo", config, ctx, quiet, example)
