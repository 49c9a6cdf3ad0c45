"""Benchmark: ``plamo-fast pack`` on pre-tokenized Parquet, end to end (Parquet in, packed
Parquet out), side by side with TRL's ``pack_dataset(strategy="bfd")`` reading and writing the
same Parquet with 🤗 datasets (``Dataset.from_parquet`` -> ``pack_dataset`` -> ``to_parquet``),
in the same run.

Data: ``--docs`` documents (default 200,000: ~113M tokens), lengths ~ lognormal(median 350,
sigma 1) clipped to [1, L], random token ids below 32,000, ``input_ids`` and ``labels`` list<int32>
columns (labels -100 on the first ~30% of each document, the prompt), written once with pyarrow
(snappy, as ``datasets`` writes). Each tool runs in a fresh process per repeat (datasets with a
fresh cache folder each time); wall time and peak RSS (``ru_maxrss``) of that process are
recorded, medians reported. TRL is called as SFTTrainer calls it (``map`` batches of 1000) unless
``--trl-global``.

    .venv/bin/python benches/bench_pack_pretokenized.py --repeat 3
    .venv/bin/python benches/bench_pack_pretokenized.py --docs 50000 --repeat 3

``--io-bound`` also times the Parquet decode of the input and the encode of pack's output
alone (pyarrow's decode at pack's batch size; pack's own Parquet writer): the floor of any
such pack, and the ratio to TRL that it would give.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from bench_common import git_commit, machine_info, package_version, print_header

REPO = Path(__file__).resolve().parent.parent
VOCAB = 32000
TARGETS = {"speedup": 5.0, "rss_share_of_tokens": 0.25}

# Runs in a fresh interpreter: argv[1] is a JSON object of settings; prints a JSON result.
PLAMO = r"""
import json, resource, sys, time
cfg = json.loads(sys.argv[1])
t0 = time.perf_counter()
from plamo_fast.cli import main
code = main(["pack", cfg["data"], "-L", str(cfg["L"]), "-o", cfg["out"], "-q", "--overwrite"])
wall = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
report = json.load(open(cfg["out"] + "/pack_report.json"))
print(json.dumps({"code": code, "wall_s": wall, "maxrss_mib": rss,
                  "packed": report["examples_packed"], "tokens": report["total_tokens"]}))
"""
TRL = r"""
import json, resource, sys, time
cfg = json.loads(sys.argv[1])
t0 = time.perf_counter()
import datasets
from trl.data_utils import pack_dataset
datasets.disable_progress_bars()
ds = datasets.Dataset.from_parquet(cfg["data"], cache_dir=cfg["cache"])
map_kwargs = {"batch_size": None} if cfg["global"] else {"num_proc": None}
packed = pack_dataset(ds, cfg["L"], strategy="bfd", map_kwargs=map_kwargs)
packed.to_parquet(cfg["out"])
wall = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"code": 0, "wall_s": wall, "maxrss_mib": rss, "rows": len(packed)}))
"""
# The Parquet work alone, in fresh processes: decoding the input as pack reads it, and
# encoding pack's output again (read into memory first, not timed) as pack writes it.
DECODE = r"""
import json, sys, time
from pathlib import Path
cfg = json.loads(sys.argv[1])
from plamo_fast.data import pack
from plamo_fast.data.curation_io import parquet_batches
t0 = time.perf_counter(); c0 = time.process_time()
path = Path(cfg["data"])
for batch in parquet_batches(path, ["input_ids", "labels"], pack._batch_rows(path)):
    pass
print(json.dumps({"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}))
"""
ENCODE = r"""
import json, sys, time
from pathlib import Path
import pyarrow.parquet as pq
cfg = json.loads(sys.argv[1])
from plamo_fast.data import pack
source = pq.ParquetFile(cfg["packed"])
groups = [source.read_row_group(g) for g in range(source.metadata.num_row_groups)]
t0 = time.perf_counter(); c0 = time.process_time()
writer = pack._parquet_writer(Path(cfg["out"]), groups[0])  # pack's own writer (native)
for group in groups:
    writer.write_table(group)
writer.close()
print(json.dumps({"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}))
"""


def io_bound(data: Path, workdir: Path, max_length: int, repeat: int) -> dict:
    """Median seconds of the Parquet decode (pyarrow) and encode (pack's own writer) alone:
    the floor of a pack that reads and writes Parquet this way."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        packed = Path(tmp) / "packed"
        run(PLAMO, {"data": str(data), "L": max_length, "out": str(packed)})
        cfg = {"data": str(data), "packed": str(packed / "data.parquet"), "out": f"{tmp}/x.pq"}
        runs = {"decode": [], "encode": []}
        for _ in range(repeat):
            runs["decode"].append(run(DECODE, cfg))
            runs["encode"].append(run(ENCODE, cfg))
    return {
        step: {k: statistics.median(r[k] for r in rs) for k in ("wall_s", "cpu_s")}
        for step, rs in runs.items()
    }


def make_data(path: Path, docs: int, max_length: int, seed: int) -> int:
    """Writes the input Parquet (row groups of 10,000 documents); returns its token count."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(np.rint(rng.lognormal(math.log(350), 1.0, docs)), 2, max_length)
    lengths = lengths.astype(np.int64)
    writer = None
    for start in range(0, docs, 10_000):
        part = lengths[start : start + 10_000]
        offsets = np.concatenate([[0], np.cumsum(part)]).astype(np.int32)
        ids = rng.integers(0, VOCAB, int(offsets[-1]), dtype=np.int32)
        prompt = (part * 0.3).astype(np.int64)
        position = np.arange(int(offsets[-1])) - np.repeat(offsets[:-1], part)
        labels = np.where(position < np.repeat(prompt, part), -100, ids).astype(np.int32)
        table = pa.table(
            {
                "input_ids": pa.ListArray.from_arrays(pa.array(offsets), pa.array(ids)),
                "labels": pa.ListArray.from_arrays(pa.array(offsets), pa.array(labels)),
            }
        )
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()
    return int(lengths.sum())


def run(script: str, cfg: dict, python: str = sys.executable) -> dict:
    proc = subprocess.run(
        [python, "-c", script, json.dumps(cfg)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def add_data_args(p: argparse.ArgumentParser) -> None:
    """The options naming the input (shared with benches that reuse its cached file)."""
    p.add_argument("--docs", type=int, default=200_000)
    p.add_argument("--max-length", type=int, default=4096)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, default=REPO / "bench-work" / "pack_pretokenized")


def cached_data(args: argparse.Namespace) -> tuple[Path, int]:
    """The input Parquet of ``add_data_args``' options (made once under ``--workdir``) and its
    token count."""
    args.workdir.mkdir(parents=True, exist_ok=True)
    data = args.workdir / f"pretokenized-{args.docs}-L{args.max_length}-s{args.seed}.parquet"
    tokens_file = data.with_suffix(".tokens")
    if not data.exists() or not tokens_file.exists():
        tokens_file.write_text(str(make_data(data, args.docs, args.max_length, args.seed)))
    return data, int(tokens_file.read_text())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_args(p)
    p.add_argument("--no-peer", action="store_true", help="plamo-fast only")
    p.add_argument("--trl-global", action="store_true", help="one BFD over the whole dataset")
    p.add_argument(
        "--io-bound", action="store_true", help="also time the Parquet decode and encode alone"
    )
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    data, tokens = cached_data(args)
    token_bytes = tokens * 4 * 2  # input_ids and labels as int32
    versions = {
        "plamo-fast commit": git_commit(REPO),
        "pyarrow": pa.__version__,
        "trl": package_version(sys.executable, "trl"),
        "datasets": package_version(sys.executable, "datasets"),
    }
    print_header(
        " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]), machine_info(), versions
    )
    print(
        f"input:   {data.name}: {args.docs:,} docs, {tokens:,} tokens "
        f"({token_bytes / 2**20:,.0f} MiB as int32 input_ids + labels), "
        f"{data.stat().st_size / 2**20:,.0f} MiB on disk; L = {args.max_length}",
        flush=True,
    )
    results: dict[str, list[dict]] = {"plamo-fast pack": []}
    if not args.no_peer:
        results["TRL pack_dataset (datasets I/O)"] = []
    for _ in range(args.repeat):
        for name in results:
            with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
                cfg = {"data": str(data), "L": args.max_length, "global": args.trl_global}
                if name.startswith("plamo"):
                    cfg["out"] = str(Path(tmp) / "packed")
                    result = run(PLAMO, cfg)
                    if (result["packed"], result["tokens"]) != (args.docs, tokens):
                        raise SystemExit(f"plamo-fast lost documents or tokens: {result}")
                else:
                    cfg["out"] = str(Path(tmp) / "packed.parquet")
                    cfg["cache"] = str(Path(tmp) / "cache")
                    result = run(TRL, cfg)
            results[name].append(result)
            print(
                f"... {name}: {result['wall_s']:.2f} s, {result['maxrss_mib']:,.0f} MiB", flush=True
            )
    print("\n| tool | wall s (median) | M tokens/s | peak RSS MiB (median) | RSS / token bytes |")
    print("| --- | --- | --- | --- | --- |")
    summary = {}
    for name, runs in results.items():
        wall = statistics.median(r["wall_s"] for r in runs)
        rss = statistics.median(r["maxrss_mib"] for r in runs)
        summary[name] = {"wall_s": wall, "maxrss_mib": rss, "runs": runs}
        share = rss * 2**20 / token_bytes
        print(f"| {name} | {wall:.2f} | {tokens / wall / 1e6:.1f} | {rss:,.0f} | {share:.1%} |")
    plamo = summary["plamo-fast pack"]
    share = plamo["maxrss_mib"] * 2**20 / token_bytes
    print(f"\nplamo-fast peak RSS {share:.1%} of the tokens' size (target < 25%)")
    ratio = None
    if not args.no_peer:
        ratio = summary["TRL pack_dataset (datasets I/O)"]["wall_s"] / plamo["wall_s"]
        print(f"plamo-fast vs TRL end to end: {ratio:.2f}x (target >= {TARGETS['speedup']:g}x)")
    bound = None
    if args.io_bound:
        bound = io_bound(data, args.workdir, args.max_length, args.repeat)
        floor = bound["decode"]["wall_s"] + bound["encode"]["wall_s"]
        for step, value in bound.items():
            print(f"Parquet {step} alone: {value['wall_s']:.2f} s ({value['cpu_s']:.2f} s CPU)")
        print(f"plamo-fast spends {plamo['wall_s'] - floor:.2f} s beyond them", end="")
        if ratio is not None:
            trl = summary["TRL pack_dataset (datasets I/O)"]["wall_s"]
            print(f"; with nothing beyond them: {trl / floor:.2f}x TRL", end="")
        print()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {"summary": summary, "ratio": ratio, "tokens": tokens, "io_bound": bound},
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
