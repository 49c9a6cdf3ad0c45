"""SFT throughput on CPU for a small Llama-style model: packed rows (plamo-fast pack) against
the usual padded batches (one conversation per row, padded to the longest in the batch), on the
same documents, same tokens trained, same run. Prints real (non-padding) tokens/s, the padding
waste, and the ratio; the last line is JSON.

    .venv/bin/python benches/bench_train_cpu.py [--docs 512] [--max-length 1024]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_common import git_commit, machine_info

ROOT = Path(__file__).resolve().parents[1]
DOLLY = (
    ROOT.parent / "shared" / "corpora" / "databricks-dolly-15k-ja" / "databricks-dolly-15k-ja.jsonl"
)
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tokenizer_and_model(folder: Path, texts: list[str], hidden: int, layers: int) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM

    folder.mkdir(parents=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=8000, special_tokens=["<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)  # fmt: skip
    tok.train_from_iterator(texts, trainer)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|im_end|>",
         "chat_template": CHATML}))  # fmt: skip
    config = LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=hidden,
                         intermediate_size=hidden * 3, num_hidden_layers=layers,
                         num_attention_heads=hidden // 64, num_key_value_heads=hidden // 64,
                         max_position_embeddings=4096)  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def run(model, batches, steps_per_update: int) -> tuple[float, int, int]:
    """Seconds, real tokens and padded tokens for forward+backward over ``batches``."""
    import torch

    from plamo_fast.train.data import collate
    from plamo_fast.train.losses import sft_loss_sum

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    real = padded = 0
    start = time.perf_counter()
    for k, rows in enumerate(batches):
        batch = collate(rows)
        logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"],
                       use_cache=False).logits  # fmt: skip
        loss, n = sft_loss_sum(logits, batch["labels"])
        (loss / max(n, 1)).backward()
        if (k + 1) % steps_per_update == 0:
            optimizer.step()
            optimizer.zero_grad()
        real += sum(len(r.input_ids) for r in rows)
        padded += batch["input_ids"].numel()
    return time.perf_counter() - start, real, padded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=384)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument(
        "--padded-batch", type=int, default=4, help="conversations per padded batch"
    )
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not DOLLY.is_file():
        print(f"{DOLLY} absent: nothing to benchmark")
        return
    import torch
    from transformers import AutoModelForCausalLM

    from plamo_fast.data.pack import pack
    from plamo_fast.train.data import PackedRow, load_packed

    torch.set_num_threads(len(__import__("os").sched_getaffinity(0)))
    print(json.dumps(machine_info()))
    records = [json.loads(x) for x in DOLLY.read_text(encoding="utf-8").splitlines()]
    random.Random(0).shuffle(records)
    records = records[: args.docs]
    conversations = [{"messages": [
        {"role": "user", "content": (r["instruction"] + "\n" + r["input"]).strip()},
        {"role": "assistant", "content": r["output"]}]} for r in records]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        tmp = Path(tmp)
        texts = [m["content"] for c in conversations for m in c["messages"]]
        model_dir = tokenizer_and_model(tmp / "model", texts, args.hidden, args.layers)
        data = tmp / "sft.jsonl"
        data.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in conversations))
        pack([str(data)], model_dir, tmp / "packed", max_length=args.max_length, kind="sft",
             progress=False)  # fmt: skip
        rows = load_packed([str(tmp / "packed")])
        docs = []
        for r in rows:
            start = 0
            for n in r.seq_lengths.tolist():
                s = slice(start, start + n)
                docs.append(PackedRow(r.input_ids[s], r.labels[s], r.position_ids[s],
                                      r.seq_lengths[:1] * 0 + n))  # fmt: skip
                start += n
        random.Random(1).shuffle(docs)
        packed_batches = [[r] for r in rows]
        padded_batches = [docs[i : i + args.padded_batch]
                          for i in range(0, len(docs), args.padded_batch)]  # fmt: skip
        model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="sdpa")
        model.config.use_cache = False
        results = {"packed": [], "padded": []}
        for _ in range(args.repeat):
            for name, batches in (("packed", packed_batches), ("padded", padded_batches)):
                seconds, real, total = run(model, batches, steps_per_update=4)
                results[name].append((seconds, real, total))
    summary = {}
    for name, runs in results.items():
        seconds = statistics.median(r[0] for r in runs)
        real, total = runs[0][1], runs[0][2]
        summary[name] = {
            "seconds_median": round(seconds, 2),
            "real_tokens": real,
            "tokens_incl_padding": total,
            "padding_waste": round(1 - real / total, 4),
            "real_tokens_per_s": round(real / seconds),
        }
        print(f"{name:>6}: {real:,} real tokens ({total:,} with padding, waste "
              f"{100 * (1 - real / total):.1f}%) in {seconds:.2f} s: "
              f"{real / seconds:,.0f} real tokens/s")  # fmt: skip
    ratio = summary["packed"]["real_tokens_per_s"] / summary["padded"]["real_tokens_per_s"]
    print(f"packed / padded throughput: {ratio:.2f}x")
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"bench": "train_cpu", "commit": git_commit(ROOT), "params": params,
                      "docs": len(docs), "rows": len(rows), "args": vars(args),
                      "results": summary, "packed_over_padded": round(ratio, 3)}))  # fmt: skip
    sys.stdout.flush()


if __name__ == "__main__":
    main()
