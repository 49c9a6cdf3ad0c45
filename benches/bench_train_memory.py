"""Peak resident memory of one SFT training process at two sizes of packed data (issue 11: the
process must not hold the dataset, so the peak may not grow with it).

For each size (default 10M and 100M packed tokens) packed Parquet is written straight with NumPy
and pyarrow into a temporary folder (rows of up to 2048 tokens, zstd, as ``pack`` writes it),
then a fresh process trains a tiny Llama (built from a config) for a few steps on it through
``plamo_fast.train.api.train`` and reports its peak RSS (VmHWM: anonymous memory plus the
mapped file pages it touched). The two peaks and their ratio are printed; the check is that they
lie within 10% of each other. For comparison only, the loader as it was before issue 11 (every
row as Python lists, then int64 arrays; kept in tests/test_train_data.py) is measured alone at
the smallest size, next to the new loader alone. The data is deleted afterwards. The last line is
JSON.

    .venv/bin/python benches/bench_train_memory.py [--tokens 10e6 100e6] [--steps 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import git_commit, machine_info, print_header

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the packed-data writer and the former loader

MAX_LENGTH = 2048
VOCAB = 1000


def tiny_model(folder: Path) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=MAX_LENGTH)  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def config_file(folder: Path, model: Path, data: Path, steps: int) -> Path:
    import yaml

    stage = {
        "name": "memory",
        "model": str(model),
        "output": str(folder / "out"),
        "data": {"packed": [str(data)]},
        "optim": {"lr": 1e-4, "schedule": "constant"},
        "micro_batch_rows": 2,
        "grad_accum": 2,
        "max_steps": steps,
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump({"kind": "sft", "plot": False, "stages": [stage]}))
    return path


def peak_rss_kib() -> int:
    """This process's peak resident set (VmHWM). Not ``ru_maxrss``: on Linux that keeps the
    parent's peak across fork and exec, so a child would report at least the bench's own."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(args: argparse.Namespace) -> None:
    """In the fresh process: train (or only load), then print the peak RSS as JSON."""
    import torch  # imported in every mode, so that the loaders are compared on the same base

    torch.set_num_threads(1)
    start = time.perf_counter()
    if args.child == "train":
        from plamo_fast.train.api import train

        train(args.config, "sft", progress=False)
    else:
        if args.child == "load-old":
            from test_train_data import old_load_packed as load
        else:
            from plamo_fast.train.data import load_packed as load
        rows = load([str(args.data)])
        assert len(rows) > 0
    print(json.dumps({"peak_mib": round(peak_rss_kib() / 1024, 1),
                      "seconds": round(time.perf_counter() - start, 1)}))  # fmt: skip


def fresh_process(*args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"child {args[:2]} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=float, nargs="+", default=[10e6, 100e6])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--child", choices=["train", "load", "load-old"], help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    from test_train_data import write_random_packed

    machine = machine_info()
    versions = {"commit": git_commit(ROOT)}
    command = "python benches/bench_train_memory.py " + " ".join(sys.argv[1:])
    print_header(command.strip(), machine, versions)
    results = []
    for tokens in map(int, args.tokens):
        with tempfile.TemporaryDirectory(prefix="bench-train-memory-") as tmp:
            tmp = Path(tmp)
            started = time.perf_counter()
            data = write_random_packed(tmp / "packed" / "data.parquet", tokens,
                                       max_length=MAX_LENGTH, vocab=VOCAB)  # fmt: skip
            size_mib = data.stat().st_size / 2**20
            written = time.perf_counter() - started
            config = config_file(tmp, tiny_model(tmp / "model"), data.parent, args.steps)
            result = {
                "tokens": tokens,
                "parquet_mib": round(size_mib, 1),
                "train": fresh_process("--child", "train", "--config", str(config)),
                "load": fresh_process("--child", "load", "--data", str(data.parent)),
            }
            if tokens == min(map(int, args.tokens)):
                result["load_before_issue_11"] = fresh_process(
                    "--child", "load-old", "--data", str(data.parent)
                )
        results.append(result)
        print(f"{tokens / 1e6:.0f}M tokens (Parquet {size_mib:.0f} MiB, written in "
              f"{written:.0f} s): training process peak {result['train']['peak_mib']:.0f} MiB "
              f"({result['train']['seconds']} s, {args.steps} steps); loader alone "
              f"{result['load']['peak_mib']:.0f} MiB", flush=True)  # fmt: skip
        if "load_before_issue_11" in result:
            old = result["load_before_issue_11"]
            print(f"  for comparison, the loader before issue 11 alone: {old['peak_mib']:.0f} MiB "
                  f"({old['seconds']} s)")  # fmt: skip
    peaks = [r["train"]["peak_mib"] for r in results]
    ratio = max(peaks) / min(peaks)
    print(f"peak ratio largest/smallest: {ratio:.3f} ({'within' if ratio <= 1.1 else 'OVER'} 10%)")
    summary = {"bench": "train_memory", "machine": machine, **versions, "steps": args.steps}
    print(json.dumps({**summary, "results": results, "peak_ratio": round(ratio, 3)}))
    if ratio > 1.1:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
