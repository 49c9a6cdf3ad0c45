"""Benchmark: plamo-fast SLERP merge side by side with mergekit 0.1.5 (and a plain copy).

Both tools merge the same two random Llama-shaped bf16 checkpoints in the same run; each timed
run is a subprocess measured with wall clock and peak RSS (``os.wait4``). Rounds interleave the
tools so noise hits all of them alike; medians are reported.

    .venv/bin/python benches/bench_merge.py --repeat 3 --check-parity --json bench-work/results.json
    .venv/bin/python benches/bench_merge.py --scaling --repeat 1 --no-peer
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from bench_common import machine_info, package_version

from plamo_fast.merge.synthetic import SHAPES, LlamaShape, write_random_model
from plamo_fast.reference.safetensors_io import read_model

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MERGEKIT_PYTHONS = (
    Path("/root/venvs/mergekit/bin/python"),
    Path("~/.cache/plamo-fast/mergekit-0.1.5/bin/python").expanduser(),
)
SHARD_BYTES = 10**9  # input and output shards: 1 GB (decimal, as both tools count it)
TARGETS = {"speedup": 3.0, "rss_ratio": 0.25, "copy_fraction": 0.70}
MERGEKIT_CONFIG = """\
merge_method: slerp
base_model: {a}
models:
  - model: {a}
  - model: {b}
parameters:
  t: 0.5
dtype: bfloat16
"""


@dataclass
class Run:
    """One timed subprocess."""

    wall_s: float
    maxrss_kib: int
    returncode: int
    log: Path


@dataclass
class Series:
    """Repeated timed runs of one command."""

    name: str
    command: str
    output_bytes: int = 0
    runs: list[Run] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.runs) and all(r.returncode == 0 for r in self.runs)

    @property
    def wall_s(self) -> float:
        return statistics.median(r.wall_s for r in self.runs)

    @property
    def rss_mib(self) -> float:
        return statistics.median(r.maxrss_kib for r in self.runs) / 1024

    @property
    def gb_per_s(self) -> float:
        return self.output_bytes / 1e9 / self.wall_s

    def to_json(self) -> dict:
        return {
            "command": self.command,
            "ok": self.ok,
            "output_bytes": self.output_bytes,
            "wall_s": [round(r.wall_s, 3) for r in self.runs],
            "maxrss_kib": [r.maxrss_kib for r in self.runs],
            "median_wall_s": round(self.wall_s, 3) if self.runs else None,
            "median_rss_mib": round(self.rss_mib, 1) if self.runs else None,
            "output_gb_per_s": round(self.gb_per_s, 3) if self.ok else None,
        }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--workdir",
        type=Path,
        default=REPO / "bench-work",
        help="checkpoints, outputs and logs (default: bench-work/ in the repo root)",
    )
    p.add_argument(
        "--shape",
        choices=sorted(SHAPES),
        default="2gb",
        help="model shape (default 2gb; tiny/small only for smoke tests)",
    )
    p.add_argument("--repeat", type=int, default=3, help="timed rounds per tool (median)")
    p.add_argument(
        "--mergekit-python",
        type=Path,
        default=None,
        help="python of mergekit's virtualenv (else $PLAMO_FAST_MERGEKIT_PYTHON, "
        "/root/venvs/mergekit/bin/python, ~/.cache/plamo-fast/mergekit-0.1.5)",
    )
    p.add_argument("--no-peer", action="store_true", help="skip mergekit")
    p.add_argument("--no-copy", action="store_true", help="skip the copy-limit run")
    p.add_argument(
        "--plamo-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for `plamo-fast merge` (repeatable; e.g. --plamo-arg=--no-fsync, "
        "which also drops the fsync from the copy limit)",
    )
    p.add_argument(
        "--check-parity",
        action="store_true",
        help="compare plamo-fast's and mergekit's outputs tensor by tensor",
    )
    p.add_argument(
        "--scaling",
        action="store_true",
        help="also time the plamo-fast merge at 1x, 2x and 4x the size",
    )
    p.add_argument(
        "--prune-scaling",
        action="store_true",
        help="delete the 2x/4x checkpoints after the scaling runs",
    )
    p.add_argument("--json", type=Path, default=None, help="write the results as JSON")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    return args


def find_mergekit(explicit: Path | None) -> Path | None:
    """The python of mergekit's virtualenv (first of --mergekit-python,
    $PLAMO_FAST_MERGEKIT_PYTHON, the defaults that has a mergekit-yaml beside it), or None."""
    env = os.environ.get("PLAMO_FAST_MERGEKIT_PYTHON")
    if explicit is not None:
        candidates = [explicit]
    else:
        candidates = ([Path(env).expanduser()] if env else []) + list(DEFAULT_MERGEKIT_PYTHONS)
    for python in candidates:
        if python.is_file() and (python.parent / "mergekit-yaml").is_file():
            return python
    return None


def build_id() -> dict:
    """Git commit (and whether the tree is dirty) and a hash of the native module, to spot a
    rebuild during the run."""
    import plamo_fast._native as native

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else "?"

    digest = hashlib.sha256(Path(native.__file__).read_bytes()).hexdigest()[:12]
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "native_sha256": digest,
    }


def scaled_shape(base: LlamaShape, factor: int) -> LlamaShape:
    """``base`` with the layer count that brings its size closest to ``factor`` times."""
    if factor == 1:
        return base
    target = factor * base.num_bytes()
    fixed = dataclasses.replace(base, layers=0).num_bytes()
    per_layer = dataclasses.replace(base, layers=1).num_bytes() - fixed
    return dataclasses.replace(base, layers=max(1, round((target - fixed) / per_layer)))


def ensure_model(folder: Path, shape: LlamaShape, seed: int) -> Path:
    """Writes a random checkpoint, or reuses the one already there for the same recipe."""
    recipe = {"shape": dataclasses.asdict(shape), "seed": seed, "max_shard_bytes": SHARD_BYTES}
    stamp = folder.with_name(folder.name + ".recipe.json")
    if folder.is_dir() and stamp.is_file() and json.loads(stamp.read_text()) == recipe:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    stamp.unlink(missing_ok=True)
    started = time.perf_counter()
    print(f"  generating {folder} ({shape.num_bytes() / 1e9:.2f} GB) ...", flush=True)
    write_random_model(folder, shape, seed=seed, max_shard_bytes=SHARD_BYTES)
    stamp.write_text(json.dumps(recipe))
    print(f"  ... {time.perf_counter() - started:.0f} s", flush=True)
    return folder


def shards(folder: Path) -> list[Path]:
    """The safetensors files of a model folder."""
    return sorted(folder.glob("*.safetensors"))


def tensor_bytes(folder: Path) -> int:
    """Total size of the safetensors files in ``folder``."""
    return sum(f.stat().st_size for f in shards(folder))


def warm_cache(folders: list[Path]) -> None:
    """Reads the input shards once so that every tool starts from the same (warm) page cache."""
    for folder in folders:
        for path in shards(folder):
            with open(path, "rb") as f:
                while f.read(1 << 24):
                    pass


# Runs argv[2:], then writes "wall_s maxrss_kib exit_code" to argv[1]. A child's ru_maxrss
# starts at the RSS of the process that forked it (Linux keeps the pre-exec high-water mark), so
# the timed command is spawned from this small interpreter, not from the benchmark process whose
# numpy arrays would otherwise show up as a floor of a few hundred MiB.
LAUNCHER = """\
import os, sys, time
t = time.perf_counter()
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
t = time.perf_counter() - t
with open(sys.argv[1], "w") as f:
    f.write(f"{t} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def run_timed(argv: list[str], log: Path, *, cwd: Path, env: dict | None = None) -> Run:
    """Runs ``argv``: wall time, and peak RSS of it and its descendants (``os.wait4``)."""
    os.sync()  # flush earlier runs' dirty pages outside the timed region
    log.parent.mkdir(parents=True, exist_ok=True)
    stats = log.with_suffix(".rusage")
    stats.unlink(missing_ok=True)
    launcher = [sys.executable, "-I", "-S", "-c", LAUNCHER, str(stats)]
    with open(log, "wb") as out:
        code = subprocess.run(
            launcher + argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env
        ).returncode
    if code != 0 or not stats.is_file():
        return Run(float("nan"), 0, code or 1, log)
    wall, maxrss, returncode = stats.read_text().split()
    return Run(float(wall), int(maxrss), int(returncode), log)


def log_tail(path: Path, lines: int = 15) -> str:
    """Last lines of a run's log, indented."""
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join("    | " + line for line in text)


@dataclass
class Job:
    """A command to time repeatedly: its argv, output folder, and per-run preparation."""

    series: Series
    argv: list[str]
    output: Path
    env: dict | None = None


def plamo_job(a: Path, b: Path, out: Path, extra: list[str]) -> Job:
    """``plamo-fast merge A B --t 0.5``."""
    argv = [
        sys.executable,
        "-m",
        "plamo_fast.cli",
        "merge",
        str(a),
        str(b),
        "--t",
        "0.5",
        "-o",
        str(out),
        "--quiet",
        "--overwrite",
        "--max-shard-size",
        "1GB",
        *extra,
    ]
    return Job(Series("plamo-fast", shlex.join(argv)), argv, out)


def mergekit_job(python: Path, a: Path, b: Path, out: Path, workdir: Path) -> Job:
    """``mergekit-yaml`` with a SLERP t=0.5 config, on CPU, default options otherwise."""
    config = workdir / f"mergekit-{a.name}.yml"
    config.write_text(MERGEKIT_CONFIG.format(a=a, b=b))
    # --out-shard-size counts bytes in 0.1.5's writer (numel * element_size), despite its help.
    argv = [
        str(python.parent / "mergekit-yaml"),
        str(config),
        str(out),
        "--no-cuda",
        "--out-shard-size",
        "1B",
        "--no-copy-tokenizer",
        "--quiet",
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1")
    return Job(Series("mergekit", shlex.join(argv)), argv, out, env)


def copy_job(a: Path, b: Path, out: Path, fsync: bool) -> Job:
    """Plain tools: read both inputs, write one output of the same size (and fsync it when
    plamo-fast does, so both pay for the same durability)."""
    qa, qb, qo = (shlex.quote(str(p)) for p in (a, b, out))
    script = (
        f"mkdir -p {qo} && cat {qa}/*.safetensors > /dev/null && "
        f"cat {qb}/*.safetensors > /dev/null && cp {qa}/*.safetensors {qo}/"
    )
    if fsync:
        script += f" && sync {qo}/*.safetensors"
    argv = ["sh", "-c", script]
    return Job(Series("copy limit", shlex.join(argv)), argv, out)


def run_rounds(jobs: list[Job], repeat: int, logs: Path) -> None:
    """Runs every job ``repeat`` times, interleaved; a job that fails is dropped."""
    active = list(jobs)
    for round_ in range(1, repeat + 1):
        for job in list(active):
            shutil.rmtree(job.output, ignore_errors=True)
            log = logs / f"{job.series.name.replace(' ', '-')}-{job.output.name}-{round_}.log"
            run = run_timed(job.argv, log, cwd=logs, env=job.env)
            job.series.runs.append(run)
            print(
                f"  round {round_}: {job.series.name:<11} {run.wall_s:7.1f} s "
                f"{run.maxrss_kib / 1024:8.0f} MiB  rc={run.returncode}",
                flush=True,
            )
            if run.returncode != 0:
                print(f"  {job.series.name} failed (log {log}):\n{log_tail(log)}", flush=True)
                active.remove(job)
            else:
                job.series.output_bytes = tensor_bytes(job.output)


def ordered(bits: np.ndarray) -> np.ndarray:
    """Float bit patterns -> integers with the same order (-0 and +0 both map to 0)."""
    width = bits.dtype.itemsize * 8
    x = bits.view(f"<u{bits.dtype.itemsize}").astype(np.int64)
    magnitude = x & ((1 << (width - 1)) - 1)
    return np.where(x >> (width - 1), -magnitude, magnitude)


def compare_outputs(ours: Path, theirs: Path) -> dict:
    """Bit-identical fraction and max ulp difference of the tensors both outputs hold."""
    a, b = read_model(ours), read_model(theirs)
    common = sorted(set(a) & set(b))
    total = identical = 0
    max_ulp = 0
    histogram = {"0": 0, "1": 0, "2": 0, ">2": 0}
    worst = None
    dtype_mismatch = []
    for name in common:
        (da, xa), (db, xb) = a[name], b[name]
        if da != db or xa.shape != xb.shape:
            dtype_mismatch.append(f"{name}: {da}{list(xa.shape)} vs {db}{list(xb.shape)}")
            continue
        total += xa.size
        identical += int(
            np.count_nonzero(xa.view(f"u{xa.dtype.itemsize}") == xb.view(f"u{xb.dtype.itemsize}"))
        )
        ulp = np.abs(ordered(xa) - ordered(xb))
        counts = np.bincount(np.minimum(ulp, 3).ravel(), minlength=4)
        for key, count in zip(histogram, counts, strict=False):
            histogram[key] += int(count)
        peak = int(ulp.max()) if ulp.size else 0
        if peak > max_ulp:
            max_ulp, worst = peak, name
    return {
        "tensors_compared": len(common) - len(dtype_mismatch),
        "only_plamo_fast": sorted(set(a) - set(b)),
        "only_mergekit": sorted(set(b) - set(a)),
        "dtype_or_shape_mismatch": dtype_mismatch,
        "elements": total,
        "bit_identical": identical,
        "bit_identical_fraction": identical / total if total else None,
        "max_ulp": max_ulp,
        "max_ulp_tensor": worst,
        "ulp_histogram": histogram,
    }


def print_machine(info: dict, versions: dict) -> None:
    """Header: command line, machine, versions."""
    argv = getattr(sys, "orig_argv", [sys.executable, *sys.argv])
    print(f"command:  {shlex.join(argv)}")
    print(f"date:     {info['date']}")
    print(
        f"machine:  {info['nproc']} CPUs ({info['cpu']}), {info['arch']}, "
        f"{info['mem_gib']} GiB RAM, Linux {info['kernel']}"
    )
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))


def print_table(series: list[Series]) -> None:
    """Median wall time, peak RSS and output throughput per tool."""
    print(
        f"\n{'tool':<12}{'runs':>5}{'wall s (median)':>17}{'min':>8}{'max':>8}"
        f"{'peak RSS MiB':>14}{'out GB/s':>10}"
    )
    for s in series:
        if not s.runs:
            continue
        if not s.ok:
            print(f"{s.name:<12}{len(s.runs):>5}   failed (see {s.runs[-1].log})")
            continue
        walls = [r.wall_s for r in s.runs]
        print(
            f"{s.name:<12}{len(s.runs):>5}{s.wall_s:>17.2f}{min(walls):>8.2f}{max(walls):>8.2f}"
            f"{s.rss_mib:>14.0f}"
            f"{s.gb_per_s:>10.2f}"
        )


def ratios(plamo: Series, peer: Series | None, copy: Series | None) -> dict:
    """Speedup over mergekit, RSS ratio, fraction of the copy limit (None when not measured)."""
    out: dict = {"speedup": None, "rss_ratio": None, "copy_fraction": None}
    if plamo.ok and peer is not None and peer.ok:
        out["speedup"] = peer.wall_s / plamo.wall_s
        out["rss_ratio"] = plamo.rss_mib / peer.rss_mib
    if plamo.ok and copy is not None and copy.ok:
        out["copy_fraction"] = copy.wall_s / plamo.wall_s
    return out


def print_ratios(values: dict) -> None:
    """Ratios against their targets."""
    rows = [
        ("speedup", "mergekit time / plamo-fast time", ">=", "x"),
        ("rss_ratio", "plamo-fast RSS / mergekit RSS", "<=", ""),
        ("copy_fraction", "copy time / plamo-fast time", ">=", ""),
    ]
    print()
    for key, label, sense, unit in rows:
        value, target = values[key], TARGETS[key]
        if value is None:
            print(f"{label:<34} n/a")
            continue
        met = value >= target if sense == ">=" else value <= target
        print(
            f"{label:<34} {value:6.2f}{unit:<2} (target {sense} {target}{unit}: "
            f"{'met' if met else 'NOT met'})"
        )


def print_parity(parity: dict) -> None:
    """Parity summary."""
    print(
        f"\nparity plamo-fast vs mergekit: {parity['tensors_compared']} tensors, "
        f"{parity['elements']:,} elements"
    )
    if parity["bit_identical_fraction"] is not None:
        print(
            f"  bit-identical: {parity['bit_identical']:,} of {parity['elements']:,} "
            f"({parity['bit_identical_fraction'] * 100:.6f} %)"
        )
        where = f" ({parity['max_ulp_tensor']})" if parity["max_ulp"] else ""
        print(f"  max |diff|: {parity['max_ulp']} ulp{where}")
    print(
        "  elements by |diff| in ulp (-0 == +0): "
        + ", ".join(f"{k}: {v:,}" for k, v in parity["ulp_histogram"].items())
    )
    for key in ("only_plamo_fast", "only_mergekit", "dtype_or_shape_mismatch"):
        if parity[key]:
            print(f"  {key}: {parity[key][:5]}{' ...' if len(parity[key]) > 5 else ''}")


def bench_scaling(
    args: argparse.Namespace, base: LlamaShape, logs: Path, mem_gib: float
) -> list[dict]:
    """plamo-fast merge time and peak RSS at 1x, 2x and 4x the size (more layers), each with
    its copy limit so that I/O effects (inputs outgrowing the page cache) show up as such."""
    results = []
    fsync = "--no-fsync" not in args.plamo_arg
    print("\nscaling (plamo-fast and copy limit, more layers):")
    for factor in (1, 2, 4):
        shape = scaled_shape(base, factor)
        tag = args.shape if factor == 1 else f"{args.shape}-x{factor}"
        models = args.workdir / "models"
        a = ensure_model(models / f"{tag}-a", shape, seed=1)
        b = ensure_model(models / f"{tag}-b", shape, seed=2)
        out = args.workdir / "out"
        jobs = [plamo_job(a, b, out / f"scaling-x{factor}", args.plamo_arg)]
        if not args.no_copy:
            jobs.append(copy_job(a, b, out / f"scaling-copy-x{factor}", fsync))
        warm_cache([a, b])
        run_rounds(jobs, args.repeat, logs)
        plamo = jobs[0].series
        copy = jobs[1].series if len(jobs) > 1 else None
        results.append(
            {
                "factor": factor,
                "layers": shape.layers,
                "input_bytes": tensor_bytes(a),
                **plamo.to_json(),
                "copy": copy.to_json() if copy else None,
            }
        )
        for job in jobs:
            shutil.rmtree(job.output, ignore_errors=True)
        if args.prune_scaling and factor > 1:
            for folder in (a, b):
                shutil.rmtree(folder, ignore_errors=True)
                folder.with_name(folder.name + ".recipe.json").unlink(missing_ok=True)
    print_scaling(results)
    for r in results:
        working_set = (2 * r["input_bytes"] + r["output_bytes"]) / 2**30
        if working_set > 0.8 * mem_gib:
            print(
                f"note: at {r['factor']}x, inputs + output ({working_set:.1f} GiB) do not fit in "
                f"the page cache ({mem_gib} GiB RAM): part of the inputs is read from disk"
            )
    return results


def print_scaling(results: list[dict]) -> None:
    """Time per GB relative to 1x, peak RSS, and the copy limit per size."""
    print(
        f"\n{'size':<6}{'layers':>7}{'GB':>7}{'wall s':>9}{'s/GB':>7}{'vs 1x':>7}"
        f"{'peak RSS MiB':>14}{'copy s':>9}{'copy/plamo':>12}"
    )
    per_gb_1x = None
    for r in results:
        if not r["ok"]:
            print(f"{r['factor']}x{'':<4}{r['layers']:>7}  failed")
            continue
        gb = r["output_bytes"] / 1e9
        per_gb = r["median_wall_s"] / gb
        per_gb_1x = per_gb_1x or per_gb
        copy = r["copy"]
        copy_s = copy["median_wall_s"] if copy and copy["ok"] else None
        tail = (
            f"{copy_s:>9.2f}{copy_s / r['median_wall_s']:>12.2f}"
            if copy_s
            else f"{'n/a':>9}{'n/a':>12}"
        )
        print(
            f"{str(r['factor']) + 'x':<6}{r['layers']:>7}{gb:>7.2f}{r['median_wall_s']:>9.2f}"
            f"{per_gb:>7.2f}{per_gb / per_gb_1x:>7.2f}{r['median_rss_mib']:>14.0f}{tail}"
        )


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark and prints (and optionally saves) the results."""
    args = parse_args(argv)
    args.workdir = args.workdir.resolve()
    logs = args.workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    info = machine_info()
    mergekit = None if args.no_peer else find_mergekit(args.mergekit_python)
    versions = {"plamo-fast": package_version(sys.executable, "plamo-fast")}
    if mergekit:
        versions["mergekit"] = package_version(mergekit, "mergekit")
        versions["torch (mergekit venv)"] = package_version(mergekit, "torch")
    print_machine(info, versions)
    build = build_id()
    print(
        f"build:    commit {build['commit']}{' (dirty tree)' if build['dirty'] else ''}, "
        f"native module sha256 {build['native_sha256']}"
    )
    if mergekit:
        print(f"peer:     {mergekit}")

    base = SHAPES[args.shape]
    print(
        f"\ninputs: two random Llama-shaped bf16 checkpoints, shape {args.shape} "
        f"({base.num_bytes() / 1e9:.2f} GB each, 1 GB shards), SLERP t=0.5"
    )
    a = ensure_model(args.workdir / "models" / f"{args.shape}-a", base, seed=1)
    b = ensure_model(args.workdir / "models" / f"{args.shape}-b", base, seed=2)
    out = args.workdir / "out"
    jobs = [plamo_job(a, b, out / "plamo-fast", args.plamo_arg)]
    if args.no_peer:
        print("peer: mergekit skipped (--no-peer)")
    elif mergekit is None:
        print(
            "peer: mergekit SKIPPED: no virtualenv with mergekit-yaml found (give "
            "--mergekit-python or set PLAMO_FAST_MERGEKIT_PYTHON)"
        )
    else:
        jobs.append(mergekit_job(mergekit, a, b, out / "mergekit", args.workdir))
    fsync = "--no-fsync" not in args.plamo_arg
    if not args.no_copy:
        jobs.append(copy_job(a, b, out / "copy", fsync))
    print("commands:")
    for job in jobs:
        print(f"  {job.series.name}: {job.series.command}")
    print(
        f"fsync: plamo-fast {'on (its default)' if fsync else 'off'}, copy limit "
        f"{'on (sync FILE...)' if fsync else 'off'}, mergekit off (it never fsyncs)"
    )
    print(
        "page cache: not dropped; inputs read once before the timed runs (warm cache); "
        "`sync` before each run; outputs deleted before each run (untimed)"
    )
    print(
        "peak RSS: ru_maxrss of the command and its children via os.wait4, spawned from a "
        "small launcher (~8 MiB floor); it counts mapped input pages (file-backed) as well as "
        "heap"
    )
    warm_cache([a, b])
    rounds = "1 round" if args.repeat == 1 else f"{args.repeat} rounds"
    print(f"timed runs: {rounds}, tools interleaved within each round")
    run_rounds(jobs, args.repeat, logs)

    series = [job.series for job in jobs]
    by_name = {s.name: s for s in series}
    print_table(series)
    values = ratios(by_name["plamo-fast"], by_name.get("mergekit"), by_name.get("copy limit"))
    print_ratios(values)

    parity = None
    if args.check_parity:
        peer = by_name.get("mergekit")
        if peer is not None and peer.ok and by_name["plamo-fast"].ok:
            parity = compare_outputs(out / "plamo-fast", out / "mergekit")
            print_parity(parity)
        else:
            print("\nparity: skipped (needs successful plamo-fast and mergekit runs)")

    scaling = bench_scaling(args, base, logs, info["mem_gib"]) if args.scaling else None

    if build_id()["native_sha256"] != build["native_sha256"]:
        print("\nWARNING: the native module was rebuilt during the run; timings are mixed")
        build["rebuilt_during_run"] = True

    if args.json:
        result = {
            "command": shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv])),
            "machine": info,
            "versions": versions,
            "build": build,
            "shape": {"name": args.shape, **dataclasses.asdict(base)},
            "input_bytes": tensor_bytes(a),
            "repeat": args.repeat,
            "runs": {s.name: s.to_json() for s in series},
            "ratios": values,
            "targets": TARGETS,
            "parity": parity,
            "scaling": scaling,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nresults written to {args.json}")
    return 0 if all(s.ok for s in series) else 1


if __name__ == "__main__":
    sys.exit(main())
