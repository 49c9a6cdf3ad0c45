"""``plamo-fast demo``: the main job on a built-in default, for a first run on a fresh machine."""

from __future__ import annotations

from pathlib import Path

import typer


def demo(
    workdir: Path = typer.Option(Path("plamo-fast-demo"), "--dir", help="Where to write the demo."),
    size: str = typer.Option("tiny", help="Checkpoint size: tiny, small, or 2gb."),
    t: float = typer.Option(0.5, "--t", help="SLERP interpolation factor."),
) -> None:
    """Create two random Llama-shaped checkpoints and SLERP-merge them (the recipe's last step)."""
    from plamo_fast.merge.api import merge, print_summary
    from plamo_fast.merge.synthetic import SHAPES, write_random_model

    if size not in SHAPES:
        raise typer.BadParameter(f"choose one of {', '.join(SHAPES)}", param_hint="--size")
    shape = SHAPES[size]
    shard = max(shape.num_bytes() // 3, 1)
    a, b = workdir / "model_a", workdir / "model_b"
    for folder, seed in ((a, 1), (b, 2)):
        if not (folder / "config.json").exists():
            typer.echo(f"writing random {size} checkpoint {folder}", err=True)
            write_random_model(folder, shape, seed=seed, max_shard_bytes=shard)
    out = workdir / f"merged_t{t:g}"
    result = merge([a, b], t=t, output=out, overwrite=True, max_shard_size=shard, progress=True)
    print_summary(result)
    typer.echo(str(result.output))
