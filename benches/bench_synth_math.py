"""Benchmark: ``plamo-fast synth math`` throughput, problems per second end to end (draw, build
the worked solution, dedup, JSON, write the JSONL file through the output helper), one process
on one core, median of ``--repeat`` runs. Both wall-clock and CPU time (``time.process_time``)
are reported: on a shared machine the CPU-time figure is the one core's own speed.

    .venv/bin/python benches/bench_synth_math.py
    .venv/bin/python benches/bench_synth_math.py -n 100000 --repeat 5 --lang en --profile
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_common import git_commit, machine_info, print_header

from plamo_fast import __version__
from plamo_fast.synth.run import synth_math

REPO = Path(__file__).resolve().parent.parent


def run_once(n: int, args: argparse.Namespace, folder: Path, k: int) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, bytes written) of one run."""
    out = folder / f"run{k}.jsonl"
    started, cpu = time.perf_counter(), time.process_time()
    summary = synth_math(
        out, n, seed=args.seed + k, lang=args.lang, mix=args.mix, difficulty=args.difficulty
    )
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    size = out.stat().st_size
    out.unlink()
    assert summary["records"] == n
    return seconds, cpu, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100_000)  # 200k exhausts small easy spaces
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lang", default="ja")
    parser.add_argument("--mix", default=None)
    parser.add_argument("--difficulty", default=None)
    parser.add_argument("--profile", action="store_true", help="cProfile one extra run.")
    args = parser.parse_args()
    command = "python benches/bench_synth_math.py " + shlex.join(sys.argv[1:])
    print_header(command, machine_info(), {"plamo-fast": f"{__version__} ({git_commit(REPO)})"})
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        run_once(min(args.n, 20_000), args, folder, 999)  # warm-up: imports, caches
        walls, cpus = [], []
        for k in range(args.repeat):
            seconds, cpu, size = run_once(args.n, args, folder, k)
            walls.append(seconds)
            cpus.append(cpu)
            print(
                f"run {k + 1}: wall {seconds:.2f} s ({args.n / seconds:,.0f} problems/s), "
                f"CPU {cpu:.2f} s ({args.n / cpu:,.0f} problems/s), {size / 2**20:.0f} MiB"
            )
        wall, cpu = statistics.median(walls), statistics.median(cpus)
        print(
            f"median: wall {args.n / wall:,.0f} problems/s, CPU {args.n / cpu:,.0f} problems/s "
            f"(n={args.n:,}, lang={args.lang}, mix={args.mix or 'all generators'}, "
            f"difficulty={args.difficulty or 'all'})"
        )
        if args.profile:
            import cProfile
            import pstats

            profile = cProfile.Profile()
            profile.enable()
            run_once(args.n, args, folder, 1000)
            profile.disable()
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
