"""``plamo-fast sft`` and ``plamo-fast dpo``."""

from __future__ import annotations

from pathlib import Path

import typer

CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True}


def _run(kind: str, config: Path, ctx: typer.Context, quiet: bool) -> None:
    import importlib.util

    from plamo_fast.errors import PlamoFastError

    missing = [
        m for m in ("torch", "transformers", "accelerate") if not importlib.util.find_spec(m)
    ]
    if missing:
        raise PlamoFastError(
            f"plamo-fast {kind} needs {', '.join(missing)}: pip install 'plamo-fast[train]'"
        )
    from plamo_fast.train.api import train

    outputs = train(config, kind, list(ctx.args), progress=not quiet)
    for out in outputs:
        typer.echo(str(out))


def sft(
    ctx: typer.Context,
    config: Path = typer.Argument(
        ...,
        help="YAML config (see configs/); then KEY=VALUE overrides such as stages.0.optim.lr=2e-5.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Supervised fine-tuning on packed rows, loss on responses only; stages run in order.
    Multi-GPU: `accelerate launch --config_file configs/accelerate/X.yaml -m plamo_fast.cli sft`."""
    _run("sft", config, ctx, quiet)


def dpo(
    ctx: typer.Context,
    config: Path = typer.Argument(
        ..., help="YAML config (see configs/); then KEY=VALUE overrides."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """DPO (sigmoid or IPO, optional SFT term) on packed pair rows; reference log-probs are
    computed once before training unless reference: live."""
    _run("dpo", config, ctx, quiet)
