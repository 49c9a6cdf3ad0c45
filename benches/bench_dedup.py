"""Benchmark: plamo-fast near-duplicate removal side by side with datasketch 2.0.0 and rensa 0.5.0.

All sides dedup the same planted set in the same run with the same definition: the set of
character 5-grams of the matching form ``normalize_text(instruction + "\\n" + input)`` (texts
shorter than 5 characters: the whole text as one shingle), MinHash with 128 permutations,
threshold 0.8, keep the first record of each group.

The planted set: databricks-dolly-15k-ja, exact-deduplicated on the matching form, plus a
near-duplicate copy of a seeded random 10 % of the records, each placed at a random later
position. A copy's key text is lightly edited at character level (one or two of: replace, insert
or delete a character, append, prepend or drop a short phrase) until its true Jaccard to the
original is in [0.85, 1); records too short for that get a punctuation/whitespace/case edit
instead, which leaves the matching form unchanged (Jaccard 1).

- plamo-fast: ``plamo_fast.data.dedup.dedup(near=True, key="prompt")`` in this process, timed
  end to end: read and parse the JSONL, normalize, shingle, sketch, LSH (12 x 10 at 0.8, leaning
  to recall because every candidate is verified; datasketch's equal weighting gives 9 x 13),
  verify candidates by true Jaccard, write the kept records and the cluster report.
- plamo-fast core: the native ``Deduper`` on exactly the peers' input (the matching-form file):
  read it, sketch, LSH, verify, cluster; no records, no output files. Apples to apples with
  the peers' timed work.
- peers, in their own virtualenv (a subprocess; imports untimed): read the matching forms
  (one JSON string per line, made by this script with plamo's ``normalize_text``), build the
  5-gram sets in Python, sketch, then stream in input order: query the LSH, a record with any
  candidate is removed, else it is inserted. No verification (the usual way both are used).
  datasketch: ``MinHash(num_perm=128).update_batch`` of UTF-8 shingles, ``MinHashLSH(0.8, 128)``
  (9 x 13). rensa: ``RMinHash(128, seed=42).update`` of the shingle strings,
  ``RMinHashLSH(0.8, 128, num_bands)``; rensa needs bands dividing 128, so it runs twice: 8 x 16
  (datasketch's false-positive/negative criterion restricted to divisors of 128, also rensa's
  own benchmark setting) and 16 x 8.

Figures per side: median wall time of ``--repeat`` runs, records/s, recall (planted copies
removed / planted copies, also by Jaccard band, with the recall the LSH S-curve predicts), and
"wrongly removed": removed records that are not planted copies and whose true Jaccard to every
record they were matched with (plamo-fast: the other members of their cluster; peers: the LSH
candidates returned for them) is below the threshold. Genuine near-duplicates already in the
corpus are right removals and are not counted.

    .venv/bin/python benches/bench_dedup.py
    .venv/bin/python benches/bench_dedup.py --repeat 5 --json bench-work/dedup.json
    .venv/bin/python benches/bench_dedup.py --records 5000 --no-peer
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import shlex
import statistics
import subprocess
import sys
import time
from array import array
from pathlib import Path

from bench_common import git_commit, machine_info, package_version, print_header

from plamo_fast import _native
from plamo_fast.data.curation_io import BadRecordError
from plamo_fast.data.dedup import dedup, key_text

REPO = Path(__file__).resolve().parent.parent
DOLLY = REPO.parent / "shared/corpora/databricks-dolly-15k-ja/databricks-dolly-15k-ja.jsonl"
PEER_VENV = Path("~/.cache/plamo-fast/dedup-peers").expanduser()
PEER_PINS = ("datasketch==2.0.0", "rensa==0.5.0")
NGRAM, NUM_PERM = 5, 128
PLANT_MIN_JACCARD = 0.85
# Short phrases appended, prepended or dropped by the planted edits (typical prompt variations).
PHRASES = (
    "を教えてください",
    "について",
    "簡潔に",
    "詳しく",
    "ですか",
    "してください",
    "と",
    "は何",
    "please",
    "以下の",
)
PUNCT = ("、", "。", "？", "！", " ", "　", "「", "」", "・", "…")
JACCARD_BANDS = ((0.85, 0.9), (0.9, 0.95), (0.95, 1.0), (1.0, 1.01))

# Runs in the peers' virtualenv: argv[1] is a JSON object of settings.
PEER_SCRIPT = r"""
import gc, json, sys, time

cfg = json.loads(sys.argv[1])
t0 = time.perf_counter()
if cfg["peer"] == "datasketch":
    from datasketch import MinHash, MinHashLSH
else:
    from rensa import RMinHash, RMinHashLSH
import_s = time.perf_counter() - t0
n, num_perm, threshold = cfg["ngram"], cfg["num_perm"], cfg["threshold"]


def shingles(text):
    if len(text) < n:
        return {text}
    return {text[i : i + n] for i in range(len(text) - n + 1)}


def run_datasketch():
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    removed = {}
    with open(cfg["texts"], encoding="utf-8") as f:
        for i, line in enumerate(f):
            m = MinHash(num_perm=num_perm)
            m.update_batch([s.encode("utf-8") for s in shingles(json.loads(line))])
            found = lsh.query(m)
            if found:
                removed[i] = found
            else:
                lsh.insert(i, m)
    return removed, {"bands": lsh.b, "rows": lsh.r}


def run_rensa():
    lsh = RMinHashLSH(threshold=threshold, num_perm=num_perm, num_bands=cfg["bands"])
    removed = {}
    with open(cfg["texts"], encoding="utf-8") as f:
        for i, line in enumerate(f):
            m = RMinHash(num_perm=num_perm, seed=42)
            m.update(list(shingles(json.loads(line))))
            found = lsh.query(m)
            if found:
                removed[i] = list(found)
            else:
                lsh.insert(i, m)
    bands = lsh.get_num_bands()
    return removed, {"bands": bands, "rows": num_perm // bands}


run = run_datasketch if cfg["peer"] == "datasketch" else run_rensa
times, removed, lsh = [], {}, {}
for _ in range(cfg["repeat"]):
    removed = None
    gc.collect()
    t0 = time.perf_counter()
    removed, lsh = run()
    times.append(time.perf_counter() - t0)
result = {
    "import_s": import_s,
    "times_s": times,
    "lsh": lsh,
    "removed": {str(k): sorted(int(c) for c in v) for k, v in removed.items()},
    # VmHWM, not ru_maxrss: the latter keeps the parent's peak across fork + exec.
    "maxrss_mib": next(
        int(ln.split()[1]) / 1024 for ln in open("/proc/self/status") if ln.startswith("VmHWM")
    ),
}
with open(cfg["out"], "w") as f:
    json.dump(result, f)
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=DOLLY, help="input JSONL (instruction/input)")
    p.add_argument("--records", type=int, default=None, help="cap on distinct records used")
    p.add_argument("--plant", type=float, default=0.10, help="fraction of records copied")
    p.add_argument("--threshold", type=float, default=0.8, help="Jaccard threshold")
    p.add_argument("--seed", type=int, default=0, help="seed of the planted copies")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per side (median reported)")
    p.add_argument(
        "--rensa-bands",
        default="8,16",
        help="comma list of rensa LSH band counts (each must divide 128)",
    )
    p.add_argument(
        "--peer-python",
        type=Path,
        default=None,
        help=f"python of the peers' venv (default {PEER_VENV}/bin/python, created if missing)",
    )
    p.add_argument("--no-peer", action="store_true", help="skip datasketch and rensa")
    p.add_argument("--workdir", type=Path, default=REPO / "bench-work" / "dedup")
    p.add_argument("--json", type=Path, default=None, help="also write all results to this file")
    return p.parse_args(argv)


def peer_python(explicit: Path | None) -> Path:
    """The peers' venv python; the default venv is created (pinned versions) when missing."""
    if explicit is not None:
        if not explicit.is_file():
            raise SystemExit(f"--peer-python {explicit} does not exist")
        return explicit
    python = PEER_VENV / "bin" / "python"
    probe = "import datasketch, rensa"
    if python.is_file() and subprocess.run([str(python), "-c", probe]).returncode == 0:
        return python
    print(f"... installing {', '.join(PEER_PINS)} into {PEER_VENV}", flush=True)
    ok = (
        subprocess.run(["python3", "-m", "venv", str(PEER_VENV)]).returncode == 0
        and subprocess.run([str(PEER_VENV / "bin" / "pip"), "install", "-q",
                            "--disable-pip-version-check", *PEER_PINS]).returncode == 0
    )  # fmt: skip
    if not ok:
        raise SystemExit(
            f"could not create the peers' venv; create it with:\n  python3 -m venv {PEER_VENV}"
            f" && {PEER_VENV}/bin/pip install {' '.join(PEER_PINS)}\nor use --no-peer"
        )
    return python


def shingles(text: str) -> frozenset[str]:
    """Character 5-grams of a matching form (the whole text when shorter)."""
    if len(text) < NGRAM:
        return frozenset((text,))
    return frozenset(text[i : i + NGRAM] for i in range(len(text) - NGRAM + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """Exact Jaccard similarity of two sets."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def load_distinct(path: Path, cap: int | None) -> tuple[list[dict], int, int]:
    """Records of the corpus with a distinct matching form (first of each), the number read
    and the number of records without user text."""
    records, seen, read, bad = [], set(), 0, 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            read += 1
            record = json.loads(line)
            try:
                form = _native.normalize_text(key_text(record, "prompt", ()))
            except BadRecordError:
                bad += 1
                continue
            if form in seen:
                continue
            seen.add(form)
            records.append(record)
            if cap is not None and len(records) >= cap:
                break
    return records, read, bad


def form_of(record: dict) -> str:
    """The matching form of a record's prompt key."""
    return _native.normalize_text(key_text(record, "prompt", ()))


def edit_text(text: str, rng: random.Random, pool: str) -> str:
    """One light character-level edit of ``text``."""
    op = rng.choice(("replace", "insert", "delete", "append", "prepend", "drop_end"))
    pos = rng.randrange(len(text) + 1)
    if op == "replace" and text:
        pos = min(pos, len(text) - 1)
        return text[:pos] + rng.choice(pool) + text[pos + 1 :]
    if op == "insert":
        return text[:pos] + rng.choice(pool) + text[pos:]
    if op == "delete" and len(text) > 1:
        pos = min(pos, len(text) - 1)
        return text[:pos] + text[pos + 1 :]
    if op == "prepend":
        return rng.choice(PHRASES) + text
    if op == "drop_end" and len(text) > 4:
        return text[: -rng.randint(1, 3)]
    return text + rng.choice(PHRASES)


def punct_edit(text: str, rng: random.Random) -> str:
    """An edit that the matching form ignores (punctuation, whitespace or letter case)."""
    for _ in range(20):
        pos = rng.randrange(len(text) + 1)
        if rng.random() < 0.3 and text.lower() != text.upper():
            edited = text.swapcase()
        else:
            edited = text[:pos] + rng.choice(PUNCT) + text[pos:]
        if edited != text:
            return edited
    return text + "。"


def plant_copy(record: dict, rng: random.Random) -> tuple[dict, float, str]:
    """A lightly edited copy of ``record``: (copy, true Jaccard to it, kind)."""
    fields = [k for k in ("instruction", "input") if isinstance(record.get(k), str)]
    fields = [k for k in fields if record[k].strip()] or fields
    weights = [len(record[k]) + 1 for k in fields]
    original = shingles(form_of(record))
    pool = "".join(c for c in form_of(record) if c.isalnum()) or "あ"
    for _ in range(200):
        copy = dict(record)
        for _ in range(rng.choice((1, 1, 2))):
            field = rng.choices(fields, weights)[0]
            copy[field] = edit_text(copy[field], rng, pool)
        form = form_of(copy)
        if not form:
            continue
        j = jaccard(original, shingles(form))
        if PLANT_MIN_JACCARD <= j < 1.0:
            return copy, j, "near"
    copy = dict(record)
    field = rng.choices(fields, weights)[0]
    copy[field] = punct_edit(copy[field], rng)
    return copy, jaccard(original, shingles(form_of(copy))), "same-form"


def build_planted(args: argparse.Namespace) -> dict:
    """The planted set: distinct records plus edited copies at random later positions."""
    distinct, read, bad = load_distinct(args.data, args.records)
    n = len(distinct)
    rng = random.Random(args.seed)
    chosen = sorted(rng.sample(range(n), round(args.plant * n)))
    # (position key, record, original index or -1, jaccard, kind)
    items: list[tuple[float, dict, int, float, str]] = [
        (float(i), r, -1, 0.0, "") for i, r in enumerate(distinct)
    ]
    for i in chosen:
        copy, j, kind = plant_copy(distinct[i], rng)
        items.append((rng.uniform(i + 0.5, n), copy, i, j, kind))
    items.sort(key=lambda t: t[0])
    lines, forms, planted = [], [], {}
    original_pos = {}
    for pos, (key, record, orig, j, kind) in enumerate(items):
        lines.append(json.dumps(record, ensure_ascii=False))
        forms.append(form_of(record))
        if orig < 0:
            original_pos[int(key)] = pos
        else:
            planted[pos] = {"original": orig, "jaccard": j, "kind": kind}
    for pos, info in planted.items():
        info["original"] = original_pos[info["original"]]
        assert info["original"] < pos
    args.workdir.mkdir(parents=True, exist_ok=True)
    data = args.workdir / "planted.jsonl"
    texts = args.workdir / "planted-forms.jsonl"
    data.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    texts.write_text(
        "".join(json.dumps(f, ensure_ascii=False) + "\n" for f in forms), encoding="utf-8"
    )
    return {
        "read": read,
        "bad": bad,
        "distinct": n,
        "records": len(lines),
        "forms": forms,
        "sets": [shingles(f) for f in forms],
        "planted": planted,
        "data": data,
        "texts": texts,
    }


def s_curve(j: float, bands: int, rows: int) -> float:
    """Probability that a pair of Jaccard ``j`` shares at least one LSH band."""
    return 1.0 - (1.0 - j**rows) ** bands


def evaluate(name: str, times: list[float], removed: dict[int, list[int]], lsh: dict, data: dict,
             threshold: float) -> dict:  # fmt: skip
    """Recall on the planted copies and the count of wrongly removed records."""
    planted, sets = data["planted"], data["sets"]
    wall = statistics.median(times)
    hit = [p for p in planted if p in removed]
    by_band = {}
    for lo, hi in JACCARD_BANDS:
        group = [p for p, v in planted.items() if lo <= v["jaccard"] < hi]
        found = sum(1 for p in group if p in removed)
        expected = sum(s_curve(planted[p]["jaccard"], lsh["bands"], lsh["rows"]) for p in group)
        label = "1.0 (same form)" if lo == 1.0 else f"[{lo:.2f}, {hi:.2f})"
        by_band[label] = {"planted": len(group), "removed": found, "expected": expected}
    wrong, right_other, planted_unmatched = [], 0, 0
    for i, partners in removed.items():
        best = max((jaccard(sets[i], sets[k]) for k in partners if k != i), default=0.0)
        if i in planted:
            planted_unmatched += best < threshold
        elif best < threshold:
            wrong.append({"record": i, "max_jaccard": round(best, 4), "partners": len(partners)})
        else:
            right_other += 1
    expected_all = sum(s_curve(v["jaccard"], lsh["bands"], lsh["rows"]) for v in planted.values())
    return {
        "name": name,
        "times_s": times,
        "wall_s": wall,
        "records_per_s": data["records"] / wall if wall > 0 else float("inf"),
        "lsh": lsh,
        "removed": len(removed),
        "planted_removed": len(hit),
        "recall": len(hit) / len(planted) if planted else 1.0,
        "recall_expected": expected_all / len(planted) if planted else 1.0,
        "recall_by_jaccard": by_band,
        "wrongly_removed": len(wrong),
        "wrongly_removed_pct": 100.0 * len(wrong) / data["distinct"],
        "wrongly_removed_examples": sorted(wrong, key=lambda w: w["max_jaccard"])[:5],
        "corpus_near_dups_removed": right_other,
        "planted_removed_without_true_match": planted_unmatched,
    }


def run_plamo(args: argparse.Namespace, data: dict) -> tuple[dict, dict]:
    """Times ``dedup`` in this process; returns the evaluation and the run's summary."""
    out = args.workdir / "plamo-kept.jsonl"
    report = args.workdir / "plamo-report.jsonl"
    times, summary = [], {}
    for _ in range(args.repeat):
        gc.collect()
        t0 = time.perf_counter()
        summary = dedup(
            [data["data"]], out, near=True, threshold=args.threshold, key="prompt",
            report_path=report, progress=False, overwrite=True,
        )  # fmt: skip
        times.append(time.perf_counter() - t0)
    removed: dict[int, list[int]] = {}
    for line in report.read_text(encoding="utf-8").splitlines():
        cluster = json.loads(line)
        members = [cluster["kept"]["line"] - 1] + [r["line"] - 1 for r in cluster["removed"]]
        for r in cluster["removed"]:
            removed[r["line"] - 1] = [m for m in members if m != r["line"] - 1]
    # The kept file must be the input's lines minus the removed ones, byte for byte.
    source = data["data"].read_bytes().splitlines(keepends=True)
    expected = b"".join(line for i, line in enumerate(source) if i not in removed)
    summary["output_matches_report"] = out.read_bytes() == expected
    bands, rows = _native.Deduper.lsh_shape(args.threshold, NUM_PERM)
    lsh = {"bands": bands, "rows": rows}
    result = evaluate("plamo-fast", times, removed, lsh, data, args.threshold)
    result["maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result, summary


def run_plamo_core(args: argparse.Namespace, data: dict) -> dict:
    """Times the native ``Deduper`` on the peers' input: read the matching forms (one JSON string
    per line), sketch, cluster (no JSONL records, no output files)."""
    spill = args.workdir / ".core-spill"
    times, root = [], []
    for _ in range(args.repeat):
        gc.collect()
        t0 = time.perf_counter()
        with open(data["texts"], encoding="utf-8") as f:
            forms = [json.loads(line) for line in f]
        deduper = _native.Deduper(
            spill, near=True, threshold=args.threshold, ngram=NGRAM, num_perm=NUM_PERM
        )
        deduper.add(forms, [True] * len(forms))
        root_b, _, _ = deduper.finish()
        times.append(time.perf_counter() - t0)
        root = array("I", root_b)
    spill.unlink(missing_ok=True)
    clusters: dict[int, list[int]] = {}
    for i, r in enumerate(root):
        clusters.setdefault(r, []).append(i)
    removed = {i: [m for m in clusters[r] if m != i] for i, r in enumerate(root) if r != i}
    bands, rows = _native.Deduper.lsh_shape(args.threshold, NUM_PERM)
    lsh = {"bands": bands, "rows": rows}
    return evaluate("plamo-fast core", times, removed, lsh, data, args.threshold)


def run_peer(args: argparse.Namespace, python: Path, peer: str, bands: int, data: dict) -> dict:
    """Runs one peer in its venv (one subprocess, all repeats) and evaluates its removals."""
    tag = peer if peer == "datasketch" else f"{peer}-b{bands}"
    out = args.workdir / f"{tag}.json"
    script = args.workdir / "dedup_peer.py"
    script.write_text(PEER_SCRIPT)
    cfg = {
        "peer": peer,
        "bands": bands,
        "texts": str(data["texts"]),
        "ngram": NGRAM,
        "num_perm": NUM_PERM,
        "threshold": args.threshold,
        "repeat": args.repeat,
        "out": str(out),
    }
    out.unlink(missing_ok=True)
    proc = subprocess.run(
        [str(python), str(script), json.dumps(cfg)], capture_output=True, text=True
    )
    if proc.returncode != 0 or not out.is_file():
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise SystemExit(f"{tag} failed with exit code {proc.returncode}:\n{tail}")
    res = json.loads(out.read_text())
    removed = {int(k): v for k, v in res["removed"].items()}
    lsh = res["lsh"]
    name = peer if peer == "datasketch" else f"rensa ({lsh['bands']} x {lsh['rows']})"
    result = evaluate(name, res["times_s"], removed, lsh, data, args.threshold)
    result["import_s"] = res["import_s"]
    result["maxrss_mib"] = res["maxrss_mib"]
    return result


def fmt_row(s: dict) -> str:
    """One table line of a side's figures."""
    spread = f"{min(s['times_s']):.2f}-{max(s['times_s']):.2f}"
    lsh = s["lsh"]
    return (
        f"| {s['name']} | {s['wall_s']:.2f} | {spread} | {s['records_per_s']:,.0f} "
        f"| {lsh['bands']} x {lsh['rows']} | {s['removed']:,} "
        f"| **{100 * s['recall']:.1f} %** ({100 * s['recall_expected']:.1f} %) "
        f"| **{s['wrongly_removed']}** ({s['wrongly_removed_pct']:.2f} %) "
        f"| {s['corpus_near_dups_removed']} |"
    )


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark and prints a report, then one JSON line of all figures."""
    args = parse_args(argv)
    if not args.data.is_file():
        print(f"skipped: corpus {args.data} not found")
        return 0
    rensa_bands = [int(b) for b in args.rensa_bands.split(",") if b]
    for b in rensa_bands:
        if b <= 0 or NUM_PERM % b:
            raise SystemExit(f"--rensa-bands: {b} does not divide {NUM_PERM}")
    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    machine = machine_info()
    python = None if args.no_peer else peer_python(args.peer_python)
    versions = {
        "plamo-fast": package_version(sys.executable, "plamo-fast"),
        "plamo-fast commit": git_commit(REPO),
    }
    if python is not None:
        for pkg in ("datasketch", "rensa", "numpy", "scipy"):
            versions[f"{pkg} (peer venv)"] = package_version(python, pkg)

    t0 = time.perf_counter()
    data = build_planted(args)
    build_s = time.perf_counter() - t0
    planted = data["planted"]
    kinds = {k: sum(v["kind"] == k for v in planted.values()) for k in ("near", "same-form")}
    near_j = [v["jaccard"] for v in planted.values() if v["kind"] == "near"]

    print_header(command, machine, versions)
    print(
        f"input:   {args.data.name}: {data['read']:,} records read, {data['bad']} without user "
        f"text, {data['distinct']:,} with a distinct matching form; + {len(planted):,} planted "
        f"copies (seed {args.seed}): {kinds['near']:,} near (true Jaccard "
        f"{min(near_j, default=0):.3f}-{max(near_j, default=0):.3f}, median "
        f"{statistics.median(near_j) if near_j else 0:.3f}), {kinds['same-form']:,} with the "
        f"same matching form (too short for a near edit) = {data['records']:,} records, "
        f"{data['data'].stat().st_size / 2**20:.1f} MiB (built in {build_s:.1f} s, untimed)"
    )
    print(
        f"setup:   key prompt (instruction + input), {NGRAM}-gram shingles of the matching form, "
        f"{NUM_PERM} perms, threshold {args.threshold}, keep first; repeat {args.repeat}",
        flush=True,
    )

    sides = []
    print(f"... plamo-fast ({args.repeat} runs)", flush=True)
    plamo, summary = run_plamo(args, data)
    sides.append(plamo)
    print(f"    times {', '.join(f'{x:.2f}' for x in plamo['times_s'])} s", flush=True)
    print(f"... plamo-fast core: native Deduper on the peers' input ({args.repeat} runs)")
    sides.append(run_plamo_core(args, data))
    print(f"    times {', '.join(f'{x:.2f}' for x in sides[-1]['times_s'])} s", flush=True)
    peers = [("datasketch", 0)] + [("rensa", b) for b in rensa_bands]
    for peer, bands in peers if python is not None else []:
        label = peer if peer == "datasketch" else f"rensa ({bands} bands)"
        print(f"... {label} ({args.repeat} runs)", flush=True)
        sides.append(run_peer(args, python, peer, bands, data))
        print(f"    times {', '.join(f'{x:.2f}' for x in sides[-1]['times_s'])} s", flush=True)

    print()
    print(
        "| side | wall s (median) | min-max | records/s | LSH b x r | removed "
        "| recall (S-curve) | wrongly removed | corpus near-dups removed |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for s in sides:
        print(fmt_row(s))

    print()
    bands_hdr = list(plamo["recall_by_jaccard"])
    print("recall by true Jaccard of the planted pair (removed / planted, S-curve expectation):")
    print("| side | " + " | ".join(bands_hdr) + " |")
    print("| --- |" + " --- |" * len(bands_hdr))
    for s in sides:
        cells = [
            f"{v['removed']}/{v['planted']} ({v['expected']:.0f})"
            for v in s["recall_by_jaccard"].values()
        ]
        print(f"| {s['name']} | " + " | ".join(cells) + " |")

    ratios = {}
    core = sides[1]
    for s in sides[2:]:
        for mine in (plamo, core):
            ratios[f"{mine['name']} / {s['name']} time"] = mine["wall_s"] / s["wall_s"]
            ratios[f"{s['name']} / {mine['name']} time (speedup)"] = s["wall_s"] / mine["wall_s"]
    if ratios:
        print()
        print("| ratio | value |")
        print("| --- | --- |")
        for name, value in ratios.items():
            print(f"| {name} | **{value:.2f}×** |")

    print()
    print(
        f"plamo-fast dedup summary: {summary.get('records_read')} read, "
        f"{summary.get('records_kept')} kept, exact pairs {summary.get('exact_duplicate_pairs')}, "
        f"LSH candidate pairs {summary.get('near_candidate_pairs')}, verified "
        f"{summary.get('near_verified_pairs')}; kept file = input minus report's removed "
        f"lines: {'yes' if summary.get('output_matches_report') else 'NO'}; peak RSS of this "
        f"process (with the bench's own shingle sets) {plamo['maxrss_mib']:,.0f} MiB"
    )
    for s in sides:
        extra = f", imports {s['import_s']:.2f} s (untimed)" if "import_s" in s else ""
        print(
            f"{s['name']}: planted copies removed without any true match >= "
            f"{args.threshold}: {s['planted_removed_without_true_match']}{extra}"
            + (f", peak RSS {s['maxrss_mib']:,.0f} MiB" if "import_s" in s else "")
        )
        for w in s["wrongly_removed_examples"][:3]:
            rec = w["record"]
            print(
                f"    wrongly removed e.g. record {rec} (max Jaccard {w['max_jaccard']}, "
                f"{w['partners']} partners): {data['forms'][rec][:60]!r}"
            )

    figures = {
        "bench": "dedup",
        "command": command,
        "machine": machine,
        "versions": versions,
        "input": {
            "data": str(args.data),
            "read": data["read"],
            "distinct": data["distinct"],
            "planted": len(planted),
            "planted_kinds": kinds,
            "records": data["records"],
            "seed": args.seed,
            "threshold": args.threshold,
            "ngram": NGRAM,
            "num_perm": NUM_PERM,
        },
        "sides": sides,
        "plamo_summary": summary,
        "ratios": ratios,
    }
    print()
    print(json.dumps(figures, ensure_ascii=False, default=str))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2, ensure_ascii=False, default=str) + "\n")
        print(f"\nwrote {args.json}")
    return 0 if summary.get("output_matches_report") else 1


if __name__ == "__main__":
    sys.exit(main())
