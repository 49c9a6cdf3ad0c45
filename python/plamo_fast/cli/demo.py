"""``plamo-fast demo``: the main job on a built-in default, for a first run on a fresh machine."""

from __future__ import annotations

from pathlib import Path

import typer


def _random_checkpoint(folder: Path, size: str, seed: int, shard_bytes: int) -> Path:
    """The demo's own random checkpoint of this size and seed in ``folder``: reused when an
    earlier demo wrote it, written (atomically, replacing only an earlier demo checkpoint)
    otherwise."""
    from plamo_fast.merge.synthetic import SHAPES, write_random_model
    from plamo_fast.outputs import atomic_output, read_marker

    wanted = {"size": size, "seed": seed}
    marker = read_marker(folder) or {}
    if marker.get("command") == "demo" and all(marker.get(k) == v for k, v in wanted.items()):
        return folder
    typer.echo(f"writing random {size} checkpoint {folder}", err=True)
    with atomic_output(folder, command="demo", overwrite=True, marker=wanted) as partial:
        write_random_model(partial, SHAPES[size], seed=seed, max_shard_bytes=shard_bytes)
    return folder


def demo(
    workdir: Path = typer.Option(Path("plamo-fast-demo"), "--dir", help="Where to write the demo."),
    size: str = typer.Option("tiny", help="Checkpoint size: tiny, small, or 2gb."),
    t: float = typer.Option(0.5, "--t", help="SLERP interpolation factor in [0, 1]."),
) -> None:
    """Create two random Llama-shaped checkpoints and SLERP-merge them (the recipe's last step)."""
    from plamo_fast.merge.api import merge, print_summary
    from plamo_fast.merge.synthetic import SHAPES

    if size not in SHAPES:
        raise typer.BadParameter(f"choose one of {', '.join(SHAPES)}", param_hint="--size")
    if not 0.0 <= t <= 1.0:
        raise typer.BadParameter(f"t must be between 0 and 1, got {t}", param_hint="--t")
    shard = max(SHAPES[size].num_bytes() // 3, 1)
    a = _random_checkpoint(workdir / "model_a", size, 1, shard)
    b = _random_checkpoint(workdir / "model_b", size, 2, shard)
    out = workdir / f"merged_t{t:g}"
    result = merge([a, b], t=t, output=out, overwrite=True, max_shard_size=shard, progress=True)
    print_summary(result)
    typer.echo(str(result.output))
