"""Benchmark: ``plamo_fast.pack(df)`` on a polars DataFrame of pre-tokenized rows against
``plamo-fast pack`` on the same rows as Parquet, in the same run.

Input: the data of ``bench_pack_pretokenized.py`` (``--docs`` documents, default 200,000: ~113M
tokens, ``input_ids``/``labels`` list<int32>), its Parquet file made once under ``--workdir``
and read once into a DataFrame (``polars.read_parquet``, not timed: the frame is what a user
holds).

Sides, each the median wall time of ``--repeat`` runs, interleaved:
- CLI: ``plamo-fast pack rows.parquet -L 4096 -o OUT -q`` in a subprocess, end to end as a
  user runs it (start-up, decode, check, plan, write the packed Parquet).
- DataFrame: ``plamo_fast.pack(df, tokenizer=None, max_length=4096)`` in this process (the
  frame's Arrow buffers checked in memory; the packed rows come back as a DataFrame).
- ``--staged`` adds the former DataFrame path for comparison: the frame written to an
  uncompressed Parquet file in ``TMPDIR`` first, then packed from it.
The DataFrame's rows must equal the CLI's (checked on the first run). The ratio is CLI /
DataFrame (above 1: the DataFrame path is faster). Scratch files go to ``TMPDIR`` on both sides.

    .venv/bin/python benches/bench_pack_frames.py --repeat 3 --staged
    .venv/bin/python benches/bench_pack_frames.py --docs 20000 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import git_commit, machine_info, package_version, print_header
from bench_pack_pretokenized import add_data_args, cached_data

REPO = Path(__file__).resolve().parent.parent


def run_cli(data: Path, out: Path, max_length: int) -> float:
    command = [sys.executable, "-m", "plamo_fast.cli", "pack", str(data), "-L", str(max_length),
               "-o", str(out), "-q", "--overwrite"]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def run_frame(df, max_length: int):
    import plamo_fast

    start = time.perf_counter()
    packed = plamo_fast.pack(df, tokenizer=None, max_length=max_length)
    return time.perf_counter() - start, packed


def run_staged(df, max_length: int, scratch: Path) -> float:
    """What ``plamo_fast.pack(df)`` did before: stage the frame as Parquet, pack the file."""
    import pyarrow.parquet as pq

    import plamo_fast

    start = time.perf_counter()
    staged = scratch / "rows.parquet"
    pq.write_table(df.to_arrow(), staged, compression="none", use_dictionary=False)
    plamo_fast.pack(staged, tokenizer=None, max_length=max_length)
    staged.unlink()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_args(parser)  # the same input file as bench_pack_pretokenized.py
    parser.add_argument("--staged", action="store_true", help="also time the former path")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()

    import polars as pl

    data, tokens = cached_data(args)
    print_header(
        "benches/bench_pack_frames.py " + " ".join(sys.argv[1:]),
        machine_info(),
        {
            "plamo-fast": git_commit(REPO),
            "polars": pl.__version__,
            "pyarrow": package_version(sys.executable, "pyarrow"),
        },
    )
    df = pl.read_parquet(data)
    sides = ["cli", "frame", *(["staged"] if args.staged else [])]
    times: dict[str, list[float]] = {name: [] for name in sides}
    with tempfile.TemporaryDirectory(prefix="bench-pack-frames-") as scratch:
        out = Path(scratch) / "packed"
        for i in range(args.repeat):  # interleaved, so every side sees the same machine load
            times["cli"].append(run_cli(data, out, args.max_length))
            seconds, packed = run_frame(df, args.max_length)
            times["frame"].append(seconds)
            if i == 0 and not packed.equals(pl.read_parquet(out / "data.parquet")):
                raise SystemExit("the DataFrame path packed other rows than the CLI")
            del packed
            if args.staged:
                times["staged"].append(run_staged(df, args.max_length, Path(scratch)))
            print("... " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
    medians = {name: statistics.median(values) for name, values in times.items()}
    figures = {
        "docs": args.docs,
        "tokens": tokens,
        "max_length": args.max_length,
        "repeat": args.repeat,
        "seconds": {k: [round(t, 3) for t in v] for k, v in times.items()},
        "medians": {k: round(v, 3) for k, v in medians.items()},
        "ratio_cli_over_frame": round(medians["cli"] / medians["frame"], 2),
    }
    print(f"{args.docs:,} docs, {tokens:,} tokens, L = {args.max_length}, medians of "
          f"{args.repeat}:")  # fmt: skip
    labels = {"cli": "CLI on Parquet", "frame": "DataFrame (polars)", "staged": "staged (before)"}
    for name, seconds in medians.items():
        print(f"  {labels[name]:<20} {seconds:8.2f} s   {tokens / seconds / 1e6:6.1f} M tokens/s")
    print(f"  ratio CLI / DataFrame: {medians['cli'] / medians['frame']:.2f}")
    if args.staged:
        print(f"  ratio staged / DataFrame: {medians['staged'] / medians['frame']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
