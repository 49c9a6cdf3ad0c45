"""Benchmark: ``plamo_fast.dedup(df)`` on a polars DataFrame against ``plamo-fast dedup`` on the
same rows as JSONL, in the same run.

Input: ``--rows`` synthetic records ``{"id", "prompt", "response"}`` (Japanese-like random text:
prompts of 40-160 characters, responses of 40-200, cut from a seeded random pool), a tenth of
them repeating an earlier prompt behind a full-width space (exact duplicates after
normalization), written once as JSONL and read once into a DataFrame (``polars.read_ndjson``,
not timed: the frame is what a user holds).

Sides, each the median wall time of ``--repeat`` runs:
- CLI: ``plamo-fast dedup rows.jsonl -o kept.jsonl -q --overwrite`` in a subprocess, end to
  end as a user runs it (start-up, parse, key, sketch, cluster, write the kept lines).
- DataFrame: ``plamo_fast.dedup(df)`` in this process (the frame's Arrow data to the same code
  in memory, the keys read from its string columns in Rust; the kept rows taken from it).
- With ``--records``, also the DataFrame read the way it was before the columnar keys: every
  row made a record (a dict) in Python (``dedup_table(..., columnar=False)``), the rest as
  ``plamo_fast.dedup``.
All must keep the same ids (checked). The ratio is CLI / DataFrame (above 1: the DataFrame path
is faster). ``--near`` runs near dedup on every side.

    .venv/bin/python benches/bench_dedup_frames.py                  # 1M rows, exact
    .venv/bin/python benches/bench_dedup_frames.py --rows 200000 --repeat 5 --near --records
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import git_commit, machine_info, package_version, print_header

REPO = Path(__file__).resolve().parent.parent


POOL = 1 << 22  # characters of random text that the records are cut from


def text(rng: random.Random, pool: str, low: int, high: int) -> str:
    start, length = rng.randrange(POOL - high), rng.randint(low, high)
    return pool[start : start + length]


def write_rows(path: Path, rows: int, seed: int) -> None:
    """``rows`` JSON lines; every tenth repeats an earlier prompt behind a full-width space."""
    rng = random.Random(seed)
    pool = "".join(chr(rng.randrange(0x4E00, 0x4E00 + 3000)) for _ in range(POOL))
    prompts: list[str] = []
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            if prompts and i % 10 == 9:
                prompt = "\u3000" + rng.choice(prompts)
            else:
                prompt = text(rng, pool, 40, 160)
                prompts.append(prompt)
            record = {"id": i, "prompt": prompt, "response": text(rng, pool, 40, 200)}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def run_cli(data: Path, out: Path, near: bool) -> tuple[float, list[int]]:
    command = [sys.executable, "-m", "plamo_fast.cli", "dedup", str(data), "-o", str(out),
               "-q", "--overwrite", *(["--near"] if near else [])]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    with open(out, encoding="utf-8") as f:
        return seconds, [json.loads(line)["id"] for line in f]


def run_frame(df, near: bool) -> tuple[float, list[int]]:
    import plamo_fast

    start = time.perf_counter()
    kept = plamo_fast.dedup(df, near=near)
    seconds = time.perf_counter() - start
    return seconds, kept["id"].to_list()


def run_records(df, near: bool) -> tuple[float, list[int]]:
    from plamo_fast.data.dedup import dedup_table
    from plamo_fast.frames import _rows_at, to_arrow

    start = time.perf_counter()
    table = to_arrow(df)
    kept, _, _ = dedup_table(table, near=near, columnar=False)
    kept = _rows_at(df, table, kept)  # selected as plamo_fast.dedup selects them
    seconds = time.perf_counter() - start
    return seconds, kept["id"].to_list()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--near", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--records", action="store_true", help="Also time the records path.")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()

    import polars as pl

    print_header(
        "benches/bench_dedup_frames.py " + " ".join(sys.argv[1:]),
        machine_info(),
        {
            "plamo-fast": git_commit(REPO),
            "polars": package_version(sys.executable, "polars"),
            "pyarrow": package_version(sys.executable, "pyarrow"),
        },
    )
    with tempfile.TemporaryDirectory(prefix="bench-dedup-frames-") as scratch:
        data, out = Path(scratch) / "rows.jsonl", Path(scratch) / "kept.jsonl"
        write_rows(data, args.rows, args.seed)
        df = pl.read_ndjson(data)
        cli_times, frame_times, record_times = [], [], []
        for _ in range(args.repeat):  # interleaved, so every side sees the same machine load
            seconds, cli_ids = run_cli(data, out, args.near)
            cli_times.append(seconds)
            seconds, frame_ids = run_frame(df, args.near)
            frame_times.append(seconds)
            if frame_ids != cli_ids:
                raise SystemExit("the DataFrame path kept other rows than the CLI")
            if args.records:
                seconds, record_ids = run_records(df, args.near)
                record_times.append(seconds)
                if record_ids != cli_ids:
                    raise SystemExit("the records path kept other rows than the CLI")
    cli, frame = statistics.median(cli_times), statistics.median(frame_times)
    figures = {
        "rows": args.rows,
        "kept": len(cli_ids),
        "near": args.near,
        "repeat": args.repeat,
        "cli_seconds": [round(t, 3) for t in cli_times],
        "frame_seconds": [round(t, 3) for t in frame_times],
        "cli_median": round(cli, 3),
        "frame_median": round(frame, 3),
        "ratio_cli_over_frame": round(cli / frame, 2),
    }
    if record_times:
        records = statistics.median(record_times)
        figures.update({
            "records_seconds": [round(t, 3) for t in record_times],
            "records_median": round(records, 3),
            "ratio_cli_over_records": round(cli / records, 2),
        })  # fmt: skip
    mode = "near" if args.near else "exact"
    print(f"{args.rows} rows, {len(cli_ids)} kept, {mode} dedup, medians of {args.repeat}:")
    print(f"  CLI on JSONL       {cli:8.2f} s   {args.rows / cli:10,.0f} rows/s")
    print(f"  DataFrame (polars) {frame:8.2f} s   {args.rows / frame:10,.0f} rows/s")
    if record_times:
        print(f"  DataFrame, records {records:8.2f} s   {args.rows / records:10,.0f} rows/s")
    print(f"  ratio CLI / DataFrame: {cli / frame:.2f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
