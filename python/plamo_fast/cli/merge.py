"""``plamo-fast merge``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def _parse_weights(values: list[str] | None) -> list[float] | None:
    if not values:
        return None
    out = []
    for value in values:
        for part in value.split(","):
            try:
                out.append(float(part))
            except ValueError:
                raise typer.BadParameter(
                    f"{part!r} is not a number", param_hint="--weights"
                ) from None
    return out


def merge(
    models: Optional[List[Path]] = typer.Argument(
        None,
        help="Model folders. SLERP: A B (A is the base: t=0 gives A). Linear: two or more.",
        show_default=False,
    ),
    t: float = typer.Option(0.5, "--t", "-t", help="SLERP interpolation factor in [0, 1]."),
    method: str = typer.Option("slerp", "--method", "-m", help="slerp or linear."),
    weights: Optional[List[str]] = typer.Option(
        None,
        "--weights",
        "-w",
        help="Linear weights, one per model (e.g. 0.5,0.3,0.2); "
        "default equal. Normalized by their sum.",
    ),
    config: Optional[Path] = typer.Option(
        None, "--config", "-c", help="A mergekit YAML config (slerp or linear) instead of MODELS."
    ),
    output: Optional[Path] = typer.Option(
        None,
        "--output",
        "-o",
        help="Output folder (default: named after the inputs, in the current directory).",
    ),
    max_shard_size: str = typer.Option("5GB", help="Largest output shard (5GB, 500MB, 2GiB)."),
    overwrite: bool = typer.Option(
        False, help="Replace an earlier merge output (never an input or another folder)."
    ),
    threads: int = typer.Option(
        0, help="Worker threads (0: all cores). Output is identical for any count."
    ),
    fsync: bool = typer.Option(
        True, help="Flush every output file to disk before the rename, the folder after it."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
) -> None:
    """Merge checkpoints with SLERP (two models) or a linear weighted average (two or more),
    streaming sharded safetensors with bounded memory."""
    from plamo_fast.merge.api import merge as run_merge
    from plamo_fast.merge.api import print_summary
    from plamo_fast.merge.config import load_config

    options = dict(
        max_shard_size=max_shard_size,
        overwrite=overwrite,
        threads=threads,
        fsync=fsync,
        progress=not quiet,
    )
    if config is not None:
        if models:
            raise typer.BadParameter("give either MODELS or --config, not both")
        if output is None:
            output = Path.cwd() / f"{config.stem}.merged"
        result = run_merge([], config=load_config(config), output=output, **options)
    else:
        if not models:
            raise typer.BadParameter("give the model folders to merge (or --config FILE)")
        method = method.lower()
        if method not in ("slerp", "linear"):
            raise typer.BadParameter(f"{method!r} is not slerp or linear", param_hint="--method")
        parsed = _parse_weights(weights)
        if parsed is not None and method != "linear":
            raise typer.BadParameter("--weights applies to --method linear")
        result = run_merge(models, method=method, t=t, weights=parsed, output=output, **options)
    if not quiet:
        print_summary(result)
    typer.echo(str(result.output))
