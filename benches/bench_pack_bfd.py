"""Benchmark: plamo-fast global best-fit-decreasing packing side by side with TRL 1.16's
``trl.data_utils.pack_dataset(dataset, seq_length, strategy="bfd")``.

Both tools pack the same already-tokenized documents (lengths drawn once, with a fixed seed, from
a lognormal clipped to ``[1, L]``) in the same run. TRL runs in its own virtualenv as a
subprocess that times only the ``pack_dataset`` call (dataset construction is timed apart);
plamo-fast runs in this process. TRL is timed twice: as ``SFTTrainer`` calls it (``map`` with
the default ``batch_size=1000``, so BFD runs per 1000-document batch) and as one global call
(``map_kwargs={"batch_size": None}``). Medians of ``--repeat`` runs are reported.

    .venv/bin/python benches/bench_pack_bfd.py --repeat 3 --json bench-work/pack_bfd.json
    .venv/bin/python benches/bench_pack_bfd.py --docs 100000 --no-peer
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from bench_common import git_commit, machine_info, package_version, print_header

from plamo_fast.data.packing import pack_documents, pack_lengths

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TRL_PYTHON = Path("~/.cache/plamo-fast/trl-1.16/bin/python").expanduser()
VOCAB = 32000  # token ids are ``i % VOCAB`` over the flat token stream
TARGETS = {"speedup": 5.0, "plamo_pct_above_lb": 0.05}
TRL_MODES = {
    # SFTTrainer._prepare_dataset: pack_dataset(dataset, args.max_length, args.packing_strategy,
    # map_kwargs) with map_kwargs = {"num_proc": args.dataset_num_proc, "desc": ...}; Dataset.map
    # then feeds _pack_bfd batches of its default batch_size=1000.
    "sft": {"num_proc": None, "desc": "Packing train dataset"},
    # One BFD over the whole dataset.
    "global": {"batch_size": None},
}

# Runs in TRL's virtualenv: argv[1] is a JSON object of settings.
TRL_SCRIPT = r"""
import gc, json, resource, sys, time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

cfg = json.loads(sys.argv[1])
t0 = time.perf_counter()
import datasets
from trl.data_utils import pack_dataset
import_s = time.perf_counter() - t0
datasets.disable_progress_bars()

t0 = time.perf_counter()
lengths = np.load(cfg["lengths"])
total = int(lengths.sum())
offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
np.cumsum(lengths, out=offsets[1:])
big = total >= 2**31
values = pa.array(np.resize(np.arange(cfg["vocab"], dtype=np.int32), total))
list_type = pa.LargeListArray if big else pa.ListArray
input_ids = list_type.from_arrays(pa.array(offsets.astype(np.int64 if big else np.int32)), values)
columns = {"input_ids": input_ids}
if cfg["labels"]:
    columns["labels"] = input_ids
dataset = datasets.Dataset(pa.table(columns))
build_s = time.perf_counter() - t0

times = []
packed = None
for _ in range(cfg["repeat"]):
    packed = None
    gc.collect()
    t0 = time.perf_counter()
    packed = pack_dataset(dataset, cfg["seq_length"], strategy="bfd", map_kwargs=cfg["map_kwargs"])
    times.append(time.perf_counter() - t0)

table = packed.data.table
row_lengths = pc.list_value_length(table.column("input_ids")).to_numpy().astype(np.int64)
seq_lengths = table.column("seq_lengths").combine_chunks()
np.save(cfg["row_lengths"], row_lengths)
result = {
    "import_s": import_s,
    "build_s": build_s,
    "times_s": times,
    "rows": int(len(row_lengths)),
    "total_tokens": int(row_lengths.sum()),
    "docs_out": int(len(seq_lengths.flatten())),
    "seq_lengths_sum": int(pc.sum(seq_lengths.flatten()).as_py() or 0),
    "max_row": int(row_lengths.max()) if len(row_lengths) else 0,
    "columns": table.column_names,
    "input_type": str(dataset.data.table.schema.field("input_ids").type),
    "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}
with open(cfg["out"], "w") as f:
    json.dump(result, f)
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--docs", type=int, default=1_000_000, help="number of documents")
    p.add_argument("--median", type=float, default=350.0, help="lognormal median length")
    p.add_argument("--sigma", type=float, default=1.0, help="lognormal sigma")
    p.add_argument("--max-length", type=int, default=4096, help="row length L (lengths clipped)")
    p.add_argument("--seed", type=int, default=0, help="seed of the lengths and of plamo's packer")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per tool (median reported)")
    p.add_argument("--trl-repeat", type=int, default=None, help="timed TRL runs (default --repeat)")
    p.add_argument(
        "--trl-modes",
        default="sft,global",
        help="comma list of TRL call styles: sft (per map batch of 1000, as SFTTrainer), global",
    )
    p.add_argument(
        "--trl-labels",
        action="store_true",
        help="give TRL a labels column too (SFTTrainer packs input_ids + labels)",
    )
    p.add_argument(
        "--trl-python",
        type=Path,
        default=None,
        help="python of the TRL 1.16 venv (else $PLAMO_FAST_TRL_PYTHON, else "
        f"{DEFAULT_TRL_PYTHON})",
    )
    p.add_argument("--no-peer", action="store_true", help="skip TRL")
    p.add_argument("--workdir", type=Path, default=REPO / "bench-work" / "pack_bfd")
    p.add_argument("--json", type=Path, default=None, help="write all results to this file")
    return p.parse_args(argv)


def find_trl(explicit: Path | None) -> Path | None:
    """The python of TRL's virtualenv: --trl-python, $PLAMO_FAST_TRL_PYTHON, then the default."""
    env = os.environ.get("PLAMO_FAST_TRL_PYTHON")
    if explicit is not None:
        candidates = [explicit]
    else:
        candidates = ([Path(env).expanduser()] if env else []) + [DEFAULT_TRL_PYTHON]
    for python in candidates:
        if python.is_file():
            return python
    return None


def make_lengths(docs: int, median: float, sigma: float, max_length: int, seed: int) -> np.ndarray:
    """Document lengths ~ lognormal(median, sigma), rounded and clipped to [1, max_length]."""
    rng = np.random.default_rng(seed)
    raw = rng.lognormal(math.log(median), sigma, docs)
    return np.clip(np.rint(raw), 1, max_length).astype(np.int64)


def lower_bound(total_tokens: int, max_length: int) -> int:
    """Fewest rows any packer can use: ceil(total / L)."""
    return -(-total_tokens // max_length)


def summarize(name: str, times: list[float], rows: int, total: int, max_length: int) -> dict:
    """Median time, tokens/s, rows and their distance from the lower bound."""
    lb = lower_bound(total, max_length)
    wall = statistics.median(times)
    return {
        "name": name,
        "times_s": times,
        "wall_s": wall,
        "tokens_per_s": total / wall if wall > 0 else float("inf"),
        "rows": rows,
        "lower_bound": lb,
        "pct_above_lb": 100.0 * (rows - lb) / lb if lb else 0.0,
        "fill_pct": 100.0 * total / (rows * max_length) if rows else 0.0,
    }


def build_plamo_inputs(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat int32 tokens (``i % VOCAB``), labels (the same array) and int64 doc offsets."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = np.resize(np.arange(VOCAB, dtype=np.int32), int(offsets[-1]))
    return tokens, tokens, offsets


def flat_values(column: pa.ChunkedArray) -> np.ndarray:
    """Values of a list column as one numpy array (zero-copy where arrow allows)."""
    return column.combine_chunks().flatten().to_numpy(zero_copy_only=False)


def verify_plamo(table: pa.Table, lengths: np.ndarray, offsets: np.ndarray, max_length: int):
    """Vectorized checks of pack_documents' output; returns a list of failures (empty if fine)."""
    import pyarrow.compute as pc

    fails = []
    n = len(lengths)
    row_len = pc.list_value_length(table.column("input_ids")).to_numpy().astype(np.int64)
    if row_len.max(initial=0) > max_length:
        fails.append(f"row of {row_len.max()} tokens > {max_length}")
    seq = flat_values(table.column("seq_lengths")).astype(np.int64)
    docs = flat_values(table.column("doc_ids")).astype(np.int64)
    per_row = pc.list_value_length(table.column("seq_lengths")).to_numpy().astype(np.int64)
    if (per_row == 0).any():
        fails.append("empty row")
    row_sums = np.add.reduceat(seq, np.concatenate([[0], np.cumsum(per_row)[:-1]]))
    if not np.array_equal(row_sums, row_len):
        fails.append("sum of seq_lengths != row length in some row")
    if len(docs) != n or not (np.bincount(docs, minlength=n) == 1).all():
        fails.append("not every document appears exactly once")
    elif not np.array_equal(lengths[docs], seq):
        fails.append("seq_lengths disagree with the documents' lengths")
    else:
        ids = flat_values(table.column("input_ids"))
        pos = flat_values(table.column("position_ids"))
        first = np.concatenate([[0], np.cumsum(seq)[:-1]])
        if not np.array_equal(ids[first].astype(np.int64), offsets[docs] % VOCAB):
            fails.append("a document's first token is not where seq_lengths put it")
        if (pos[first] != 0).any() or not np.array_equal(pos[first + seq - 1], seq - 1):
            fails.append("position_ids do not restart at document starts")
    if int(row_len.sum()) != int(lengths.sum()):
        fails.append("token count changed")
    return fails


def run_plamo(args: argparse.Namespace, lengths: np.ndarray) -> dict:
    """Times pack_lengths and pack_documents in this process and verifies the last output."""
    total = int(lengths.sum())
    t0 = time.perf_counter()
    tokens, labels, offsets = build_plamo_inputs(lengths)
    build_s = time.perf_counter() - t0

    lengths_times, rows_n = [], 0
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        rows = pack_lengths(lengths, args.max_length, seed=args.seed)
        lengths_times.append(time.perf_counter() - t0)
        rows_n = len(rows)
        del rows

    doc_times, table = [], None
    for _ in range(args.repeat):
        table = None
        gc.collect()
        t0 = time.perf_counter()
        table = pack_documents(tokens, labels, offsets, args.max_length, seed=args.seed)
        doc_times.append(time.perf_counter() - t0)
    assert table is not None
    t0 = time.perf_counter()
    fails = verify_plamo(table, lengths, offsets, args.max_length)
    verify_s = time.perf_counter() - t0
    docs_rows = table.num_rows
    del table, tokens, labels, offsets
    gc.collect()
    return {
        "build_s": build_s,
        "verify_s": verify_s,
        "verify_failures": fails,
        "pack_lengths": summarize(
            "plamo pack_lengths", lengths_times, rows_n, total, args.max_length
        ),
        "pack_documents": summarize(
            "plamo pack_documents", doc_times, docs_rows, total, args.max_length
        ),
        "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_trl(args: argparse.Namespace, python: Path, lengths_path: Path, mode: str) -> dict:
    """Runs TRL's pack_dataset in its venv (one subprocess, all repeats) and reads its results."""
    out = args.workdir / f"trl-{mode}.json"
    row_lengths = args.workdir / f"trl-{mode}-row-lengths.npy"
    script = args.workdir / "trl_pack_bfd.py"
    script.write_text(TRL_SCRIPT)
    cfg = {
        "lengths": str(lengths_path),
        "seq_length": args.max_length,
        "repeat": args.trl_repeat,
        "map_kwargs": TRL_MODES[mode],
        "labels": args.trl_labels,
        "vocab": VOCAB,
        "out": str(out),
        "row_lengths": str(row_lengths),
    }
    out.unlink(missing_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(python), str(script), json.dumps(cfg)], capture_output=True, text=True
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0 or not out.is_file():
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise SystemExit(f"TRL ({mode}) failed with exit code {proc.returncode}:\n{tail}")
    res = json.loads(out.read_text())
    res["subprocess_s"] = elapsed
    res["row_lengths_file"] = str(row_lengths)
    res["map_kwargs"] = TRL_MODES[mode]
    res["summary"] = summarize(
        f"TRL pack_dataset ({mode})",
        res["times_s"],
        res["rows"],
        res["total_tokens"],
        args.max_length,
    )
    return res


def fmt_row(s: dict) -> str:
    """One table line of a summary."""
    spread = f"{min(s['times_s']):.3f}-{max(s['times_s']):.3f}"
    return (
        f"| {s['name']} | {s['wall_s']:.3f} | {spread} | {s['tokens_per_s'] / 1e6:,.1f} M "
        f"| {s['rows']:,} | {s['pct_above_lb']:.4f} % | {s['fill_pct']:.3f} % |"
    )


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark and prints a report (and --json)."""
    args = parse_args(argv)
    args.trl_repeat = args.trl_repeat or args.repeat
    modes = [m for m in args.trl_modes.split(",") if m]
    for m in modes:
        if m not in TRL_MODES:
            raise SystemExit(f"unknown TRL mode {m!r}; choose from {sorted(TRL_MODES)}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    machine = machine_info()

    trl_python = None if args.no_peer else find_trl(args.trl_python)
    if not args.no_peer and trl_python is None:
        raise SystemExit(
            "TRL venv not found; create it with:\n"
            f"  python3 -m venv {DEFAULT_TRL_PYTHON.parents[1]}"
            f" && {DEFAULT_TRL_PYTHON.parent}/pip install trl==1.16.0\n"
            "or pass --trl-python / set PLAMO_FAST_TRL_PYTHON, or use --no-peer"
        )
    versions = {
        "plamo-fast": package_version(sys.executable, "plamo-fast"),
        "plamo-fast commit": git_commit(REPO),
        "numpy": np.__version__,
        "pyarrow": pa.__version__,
    }
    if trl_python is not None:
        for pkg in ("trl", "datasets", "pyarrow", "numpy"):
            versions[f"{pkg} (TRL venv)"] = package_version(trl_python, pkg)

    lengths = make_lengths(args.docs, args.median, args.sigma, args.max_length, args.seed)
    total = int(lengths.sum())
    lengths_path = args.workdir / "lengths.npy"
    np.save(lengths_path, lengths)

    print_header(command, machine, versions)
    print(
        f"input:   {args.docs:,} docs, lengths ~ lognormal(median {args.median:g}, sigma "
        f"{args.sigma:g}) clipped to [1, {args.max_length}] (seed {args.seed}): "
        f"{total:,} tokens, mean {lengths.mean():.1f}, median {np.median(lengths):g}, "
        f"{int((lengths == args.max_length).sum()):,} at L; L = {args.max_length}; "
        f"lower bound {lower_bound(total, args.max_length):,} rows"
    )
    print(f"repeat:  plamo {args.repeat}, TRL {args.trl_repeat}", flush=True)

    trl = {}
    for mode in modes if trl_python is not None else []:
        print(f"... TRL {mode} ({args.trl_repeat} runs)", flush=True)
        trl[mode] = run_trl(args, trl_python, lengths_path, mode)
        t = trl[mode]
        print(f"    times {', '.join(f'{x:.2f}' for x in t['times_s'])} s", flush=True)
    print(f"... plamo-fast ({args.repeat} runs each)", flush=True)
    plamo = run_plamo(args, lengths)

    print()
    print("| tool | wall s (median) | min-max | tokens/s | rows | above LB | fill |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    summaries = [plamo["pack_documents"], plamo["pack_lengths"]]
    summaries += [t["summary"] for t in trl.values()]
    for s in summaries:
        print(fmt_row(s))

    print()
    print(f"plamo inputs built (numpy, untimed): {plamo['build_s']:.2f} s")
    print(
        "plamo peak RSS of this process (inputs + output + temporaries): "
        f"{plamo['maxrss_mib']:,.0f} MiB"
    )
    for mode, t in trl.items():
        ok = t["docs_out"] == args.docs and t["total_tokens"] == total
        print(
            f"TRL {mode}: map_kwargs {t['map_kwargs']}; imports {t['import_s']:.2f} s, "
            f"datasets.Dataset built in {t['build_s']:.2f} s ({t['input_type']}, columns "
            f"{t['columns']}); subprocess {t['subprocess_s']:.1f} s; peak RSS "
            f"{t['maxrss_mib']:,.0f} MiB; max row {t['max_row']}; "
            f"docs/tokens preserved: {'yes' if ok else 'NO'}"
        )
    fails = plamo["verify_failures"]
    print(
        f"plamo output check ({plamo['verify_s']:.2f} s): "
        + (
            "OK (every doc once, no row > L, seq_lengths sum to row length, first tokens and "
            "position_ids in place)"
            if not fails
            else "FAILED: " + "; ".join(fails)
        )
    )

    ratios = {}
    docs_s = plamo["pack_documents"]
    for mode, t in trl.items():
        s = t["summary"]
        ratios[f"pack_documents / TRL {mode} tokens/s"] = docs_s["tokens_per_s"] / s["tokens_per_s"]
        ratios[f"pack_lengths / TRL {mode} tokens/s"] = (
            plamo["pack_lengths"]["tokens_per_s"] / s["tokens_per_s"]
        )
    print()
    print("| ratio | value | target |")
    print("| --- | --- | --- |")
    for name, value in ratios.items():
        target = f"≥ {TARGETS['speedup']:g}×" if name.startswith("pack_documents") else ""
        print(f"| {name} | **{value:.1f}×** | {target} |")
    print(
        f"| plamo % above LB | **{docs_s['pct_above_lb']:.4f} %** | "
        f"≤ {TARGETS['plamo_pct_above_lb']} % |"
    )
    for mode, t in trl.items():
        print(f"| TRL {mode} % above LB | {t['summary']['pct_above_lb']:.4f} % | |")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "command": command,
            "machine": machine,
            "versions": versions,
            "input": {
                "docs": args.docs,
                "median": args.median,
                "sigma": args.sigma,
                "max_length": args.max_length,
                "seed": args.seed,
                "total_tokens": total,
                "lower_bound": lower_bound(total, args.max_length),
            },
            "plamo": plamo,
            "trl": trl,
            "ratios": ratios,
            "targets": TARGETS,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
