"""decontaminate against every benchmark in ../shared/benchmarks, on dolly-15k-ja with benchmark
questions planted in five ways (see tests/leak_plants.py).

Side by side on the same planted file:
- plamo-fast decontaminate (end to end: read JSONL, scan, write kept lines and the report);
- the reference matcher (python/plamo_fast/reference/matching.py, the executable spec) on a
  sample of records, to show what the native index buys;
- a word 13-gram overlap filter, the approach of lm-eval-harness and NeMo Curator (re-implemented
  here in a few lines: split on whitespace, flag a record sharing any 13-gram with a benchmark),
  to show why that approach cannot serve Japanese data.

Prints MB/s, records/s, recall per plant kind and false positives; the last line is JSON.

    .venv/bin/python benches/bench_decontaminate.py [--scale 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_common import machine_info

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from curation_fixtures import BENCHMARKS, DOLLY  # noqa: E402
from leak_plants import KINDS, plant, plantable, score  # noqa: E402

from plamo_fast.data.benchmarks import load_benchmarks  # noqa: E402
from plamo_fast.data.curation_io import user_texts  # noqa: E402
from plamo_fast.data.decontaminate import decontaminate  # noqa: E402
from plamo_fast.reference import matching  # noqa: E402


def word_13gram_flags(items, records) -> set[int]:
    """Lines (1-based) sharing a whitespace-token 13-gram with any benchmark text."""
    grams = set()
    for it in items:
        words = it.text.lower().split()
        grams.update(tuple(words[i : i + 13]) for i in range(len(words) - 12))
    flagged = set()
    for line, record in enumerate(records, start=1):
        for _, text in user_texts(record):
            words = text.lower().split()
            if any(tuple(words[i : i + 13]) in grams for i in range(len(words) - 12)):
                flagged.add(line)
    return flagged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=4, help="copies of the planted corpus")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--per-kind", type=int, default=300)
    parser.add_argument("--reference-sample", type=int, default=40)
    args = parser.parse_args()
    if not DOLLY.is_file() or not BENCHMARKS.is_dir():
        print("../shared corpora/benchmarks absent: nothing to benchmark")
        return
    print(json.dumps(machine_info()))
    all_items = load_benchmarks([str(BENCHMARKS)])
    items = plantable(all_items)
    clean = [json.loads(x) for x in DOLLY.read_text(encoding="utf-8").splitlines()]
    records, plants = plant(clean, items, per_kind=args.per_kind, seed=7)
    with tempfile.TemporaryDirectory(prefix="bench-decon-") as tmp:
        tmp = Path(tmp)
        data = tmp / "planted.jsonl"
        with open(data, "w", encoding="utf-8") as f:
            for _ in range(args.scale):
                for r in records:
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")
        size = data.stat().st_size
        n = len(records) * args.scale
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            decontaminate(
                [data], [str(BENCHMARKS)], tmp / "kept.jsonl",
                report_path=tmp / "leaks.jsonl", overwrite=True, progress=False,
            )  # fmt: skip
            times.append(time.perf_counter() - start)
        t = statistics.median(times)
        report = [json.loads(x) for x in (tmp / "leaks.jsonl").read_text().splitlines()]
        first_copy = [r for r in report if r["line"] <= len(records)]
        quality = score(plants, first_copy, len(records))

    sample = records[: args.reference_sample]
    start = time.perf_counter()
    for record in sample:
        for _, text in user_texts(record):
            matching.scan([it.text for it in all_items], text)
    ref_rate = len(sample) / (time.perf_counter() - start)

    flagged = word_13gram_flags(all_items, records)
    word = score(plants, [{"line": x} for x in flagged], len(records))

    result = {
        "benchmark_items": len(all_items),
        "records": n,
        "mb": round(size / 1e6, 1),
        "seconds_median": round(t, 3),
        "seconds_all": [round(x, 3) for x in times],
        "mb_per_s": round(size / 1e6 / t, 1),
        "records_per_s": round(n / t),
        "reference_records_per_s": round(ref_rate, 2),
        "native_vs_reference": round(n / t / ref_rate),
        "recall": {k: round(v, 4) for k, v in quality["recall"].items()},
        "false_positives": quality["false_positives"],
        "false_positive_rate": round(quality["false_positive_rate"], 6),
        "word13_recall": {k: round(v, 4) for k, v in word["recall"].items()},
        "word13_false_positives": word["false_positives"],
    }
    rate = f"{result['mb_per_s']} MB/s, {result['records_per_s']:,} records/s"
    print(f"plamo-fast: {n:,} records, {size / 1e6:.1f} MB in {t:.2f} s "
          f"(median of {args.repeat}): {rate}")  # fmt: skip
    print(f"reference matcher: {ref_rate:.2f} records/s -> native is "
          f"{result['native_vs_reference']:,}x faster")  # fmt: skip
    for kind in KINDS:
        print(f"  recall {kind:<11} plamo-fast {quality['recall'][kind]:.3f}   "
              f"word 13-gram {word['recall'][kind]:.3f}")  # fmt: skip
    print(f"  false positives: plamo-fast {quality['false_positives']} of "
          f"{quality['clean_records']} clean ({100 * quality['false_positive_rate']:.3f}%), "
          f"word 13-gram {word['false_positives']}")  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
