"""dedup --near memory and time as the input grows: the per-record state held in memory is fixed
(exact hash, band keys, origin), n-gram sets go to a spill file, so peak RSS should grow far
slower than the input. Each size runs in a fresh subprocess so its peak RSS is its own.

Synthetic Japanese-like records (random CJK text, 300 characters, 10% near copies) stand in for
a large corpus; the point is the memory curve, not the data.

    .venv/bin/python benches/bench_dedup_scale.py [--sizes 50000 200000 800000]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_common import machine_info

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from plamo_fast.data.dedup import dedup
data, out = Path(sys.argv[1]), Path(sys.argv[2])
start = time.perf_counter()
summary = dedup([data], out, near=True, threshold=0.8, progress=False, overwrite=True)
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_rss_mib": rss, "kept": summary["records_kept"],
                  "read": summary["records_read"]}))
"""


def write_corpus(path: Path, records: int, seed: int) -> int:
    """``records`` lines; a tenth are copies of an earlier line with two characters changed."""
    rng = random.Random(seed)
    recent: list[str] = []
    with open(path, "w", encoding="utf-8") as f:
        for i in range(records):
            if recent and i % 10 == 9:
                chars = list(rng.choice(recent))
                for _ in range(2):
                    chars[rng.randrange(len(chars))] = chr(rng.randrange(0x3041, 0x3090))
                text = "".join(chars)
            else:
                text = "".join(chr(rng.randrange(0x4E00, 0x4E00 + 5000)) for _ in range(300))
                recent = (recent + [text])[-1000:]
            f.write(json.dumps({"prompt": text}, ensure_ascii=False) + "\n")
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 200_000, 800_000])
    args = parser.parse_args()
    print(json.dumps(machine_info()))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-dedup-scale-") as tmp:
        for n in args.sizes:
            data = Path(tmp) / f"d{n}.jsonl"
            size = write_corpus(data, n, seed=n)
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(data), str(Path(tmp) / "out.jsonl")],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            result = json.loads(out.stdout.strip().splitlines()[-1])
            result.update({"records": n, "input_mib": round(size / 2**20, 1)})
            rows.append(result)
            rate = n / result["seconds"]
            print(f"{n:>9,} records  {result['input_mib']:>7.1f} MiB in  "
                  f"{result['seconds']:6.1f} s  {rate:>8,.0f} records/s  "
                  f"peak RSS {result['peak_rss_mib']:6.0f} MiB  "
                  f"kept {result['kept']:,}")  # fmt: skip
            data.unlink()
    print(json.dumps({"bench": "dedup_scale", "rows": rows}))


if __name__ == "__main__":
    main()
