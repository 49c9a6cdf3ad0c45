"""Benchmark: ``plamo-fast pack`` end to end (JSONL messages -> packed Parquet) side by side with
the Hugging Face path (``apply_chat_template(..., return_assistant_tokens_mask=True)`` per
conversation, then TRL 1.16's ``pack_dataset`` as SFTTrainer calls it, in TRL's own
virtualenv), and with the bare tokenizer's ``encode_batch`` on the same rendered text (the
practical limit), on the same data in the same run.

Data: the real Japanese instructions of databricks-dolly-15k-ja (../shared/corpora), as
user/assistant conversations, repeated ``--copies`` times. Tokenizer: a 32k byte-level BPE
trained on that corpus (cached), with a ChatML template whose assistant turns are wrapped in
``{% generation %}`` so that transformers can return its assistant masks.

    .venv/bin/python benches/bench_pack_e2e.py --repeat 3 --json bench-work/pack_e2e.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOLLY = REPO.parent / "shared/corpora/databricks-dolly-15k-ja/databricks-dolly-15k-ja.jsonl"
DEFAULT_TRL_PYTHON = Path("~/.cache/plamo-fast/trl-1.16/bin/python").expanduser()
TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n'}}"
    "{% if message['role'] == 'assistant' %}{% generation %}"
    "{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{% else %}{{ message['content'] + '<|im_end|>' }}{% endif %}{{ '\\n' }}{% endfor %}"
)
SPECIAL = ["<s>", "</s>", "<|im_start|>", "<|im_end|>"]
TARGETS = {"vs_hf": 3.0, "vs_encode_batch": 0.8}

HF_SCRIPT = r"""
import json, sys, time
cfg = json.loads(sys.argv[1])
import datasets
from transformers import AutoTokenizer
from trl.data_utils import pack_dataset
tok = AutoTokenizer.from_pretrained(cfg["tokenizer"])
rows = [json.loads(line) for line in open(cfg["data"], encoding="utf-8")]
times = []
for _ in range(cfg["repeat"]):
    t0 = time.perf_counter()
    ids, masks = [], []
    for r in rows:
        out = tok.apply_chat_template(r["messages"], tokenize=True, return_dict=True,
                                      return_assistant_tokens_mask=True)
        if len(out["input_ids"]) > cfg["max_length"]:
            continue
        ids.append(out["input_ids"])
        masks.append(out["assistant_masks"])
    ds = datasets.Dataset.from_dict({"input_ids": ids, "completion_mask": masks})
    packed = pack_dataset(ds, cfg["max_length"], "bfd",
                          {"num_proc": None, "desc": "Packing train dataset"})
    times.append(time.perf_counter() - t0)
tokens = sum(len(i) for i in ids)
json.dump({"times": times, "tokens": tokens, "rows": len(packed)}, open(cfg["out"], "w"))
"""


def prepare(workdir: Path, copies: int) -> tuple[Path, Path]:
    """The conversations JSONL and the trained tokenizer folder (both cached in workdir)."""
    data, tok = workdir / f"dolly-ja-x{copies}.jsonl", workdir / "tokenizer"
    records = []
    for line in DOLLY.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if not r.get("output"):
            continue
        user = r["instruction"] + (f"\n\n{r['input']}" if r.get("input") else "")
        records.append(
            {
                "messages": [
                    {"role": "user", "content": user},
                    {"role": "assistant", "content": r["output"]},
                ]
            }
        )
    if not data.exists():
        workdir.mkdir(parents=True, exist_ok=True)
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        data.write_text(lines * copies, encoding="utf-8")
    if not (tok / "tokenizer.json").exists():
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=32000,
            special_tokens=SPECIAL,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tokenizer.train_from_iterator(
            (m["content"] for r in records for m in r["messages"]), trainer
        )
        tok.mkdir(parents=True, exist_ok=True)
        tokenizer.save(str(tok / "tokenizer.json"))
        (tok / "tokenizer_config.json").write_text(
            json.dumps(
                {
                    "tokenizer_class": "PreTrainedTokenizerFast",
                    "bos_token": "<s>",
                    "eos_token": "</s>",
                    "chat_template": TEMPLATE,
                }
            )
        )
    return data, tok


def run_plamo(data: Path, tok: Path, workdir: Path, max_length: int, repeat: int) -> dict:
    times, report = [], {}
    out = workdir / "plamo-out"
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "plamo_fast.cli",
                "pack",
                str(data),
                "--tokenizer",
                str(tok),
                "-L",
                str(max_length),
                "-o",
                str(out),
                "-q",
                "--overwrite",
            ],
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - t0)
        report = json.loads((out / "pack_report.json").read_text())
    return {"times": times, "tokens": report["total_tokens"], "rows": report["rows"]}


def run_hf(python: Path, data: Path, tok: Path, workdir: Path, max_length: int, repeat: int):
    out = workdir / "hf.json"
    cfg = {
        "tokenizer": str(tok),
        "data": str(data),
        "max_length": max_length,
        "repeat": repeat,
        "out": str(out),
    }
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "true"}
    subprocess.run([str(python), "-c", HF_SCRIPT, json.dumps(cfg)], check=True, env=env)
    return json.loads(out.read_text())


def run_encode_batch(data: Path, tok: Path, repeat: int) -> dict:
    """Bare ``encode_batch`` over the rendered conversations (rendering untimed)."""
    from tokenizers import Tokenizer

    from plamo_fast.data.chat_template import render
    from plamo_fast.data.pack import load_tokenizer

    bundle = load_tokenizer(tok)
    texts = [
        render(bundle.chat_template, json.loads(line)["messages"], bundle.special_tokens)
        for line in data.read_text(encoding="utf-8").splitlines()
    ]
    tokenizer = Tokenizer.from_file(str(tok / "tokenizer.json"))
    times, tokens = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        encodings = tokenizer.encode_batch(texts, add_special_tokens=False)
        times.append(time.perf_counter() - t0)
        tokens = sum(len(e.ids) for e in encodings)
    return {"times": times, "tokens": tokens}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=REPO / "bench-work/pack_e2e")
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--trl-python",
        type=Path,
        default=Path(os.environ.get("PLAMO_FAST_TRL_PYTHON", DEFAULT_TRL_PYTHON)),
    )
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if not DOLLY.exists():
        print(f"SKIPPED: {DOLLY} not found (needs ../shared)", file=sys.stderr)
        return 0
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    date = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    print(f"machine: {os.cpu_count()} CPUs; date {date}")
    data, tok = prepare(args.workdir, args.copies)
    results = {
        "plamo-fast pack": run_plamo(data, tok, args.workdir, args.max_length, args.repeat),
        "encode_batch (limit)": run_encode_batch(data, tok, args.repeat),
    }
    if not args.no_peer and args.trl_python.exists():
        results["HF apply_chat_template + TRL"] = run_hf(
            args.trl_python, data, tok, args.workdir, args.max_length, args.repeat
        )
    elif not args.no_peer:
        print(f"SKIPPED peer: {args.trl_python} not found", file=sys.stderr)
    conversations = len(data.read_text(encoding="utf-8").splitlines())
    print(f"\ninput: {data.name} ({conversations:,} conversations), L = {args.max_length}\n")
    print("| path | wall s (median) | tokens | M tokens/s |\n| --- | --- | --- | --- |")
    rate = {}
    for name, r in results.items():
        median = statistics.median(r["times"])
        rate[name] = r["tokens"] / median
        print(f"| {name} | {median:.2f} | {r['tokens']:,} | {rate[name] / 1e6:.2f} |")
    ratios = {"vs_encode_batch": rate["plamo-fast pack"] / rate["encode_batch (limit)"]}
    if "HF apply_chat_template + TRL" in rate:
        ratios["vs_hf"] = rate["plamo-fast pack"] / rate["HF apply_chat_template + TRL"]
    print()
    for key, value in ratios.items():
        print(f"plamo-fast {key}: {value:.2f}x (target >= {TARGETS[key]})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"results": results, "ratios": ratios}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
