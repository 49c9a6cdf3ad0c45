"""Benchmark: near-dedup recall at the threshold, wrong removals and speed, plamo-fast side by
side with datasketch and rensa, against an exact ground truth.

Input: about 10k Dolly-ja prompts (``instruction`` + ``input``, exact-deduplicated on the
matching form) plus near copies of a seeded random 10 % of them, each placed at a random later
position. A copy is edited at character level (replace, insert or delete a character, append,
prepend or drop a short phrase) until its true Jaccard to the original reaches a target drawn
uniformly from [0.75, 0.95]; records too short for that get no copy.

Ground truth: every pair of records whose true Jaccard of character 5-gram sets of the matching
form (a form shorter than 5 characters is its own single shingle) is at least the threshold,
found exactly by an all-pairs similarity join (prefix filtering under a global token order,
then exact verification); pairs in the corpus itself count as well as planted ones.

plamo-fast with ``--key prompt`` also applies the question rule (a question + context record is
a near duplicate only of another with the same question: question Jaccard at or above the
threshold, or question edit similarity and answer Jaccard both at or above it): its truth is
the true pairs that pass that rule exactly (``reference.matching.same_question``) as well; it
is also scored against the key-only truth. The true key pairs the rule keeps apart are split
into planted pairs (a copy and its source: the same question, edited) and pairs of the corpus
itself (on Dolly-ja, different questions about one passage). The other sides are measured on
the key alone.

Figures per side, all against that truth:
- recall: share of true pairs that do not survive with both records kept;
- wrong removals: removed records with no partner at or above the threshold anywhere;
- chain removals: removed records none of whose true partners is kept (a record removed only
  through a chain a~b~c; allowed, reported for information);
- wall time and CPU time (all threads of the process), medians of ``--repeat`` rounds,
  records/s, end to end.

Timing: every side runs in a worker process of its own (imports not timed), with one untimed
run first; then each round runs every side once, in an order rotated from round to round, so
that load from other work on the machine falls on every side alike (the load average before
and after the rounds is printed).

Sides:
- plamo-fast: ``plamo_fast.data.dedup.dedup(near=True, key="prompt", report=...)``: read and
  parse the JSONL, normalize, sketch, LSH, verify every candidate pair by true Jaccard,
  cluster, write the kept records and the cluster report.
- plamo-fast core: the native ``Deduper`` on the peers' input (the matching forms).
- datasketch (``MinHashLSH(threshold, 128)``) and rensa (``RMinHashLSH``, bands dividing 128), in
  this same Python, the 5-gram sets built in Python, streamed in input order: a record with any
  LSH candidate is removed, else inserted (their usual use, no verification).
  "matching forms": reading the forms this script made (one JSON string per line); "JSONL end
  to end" (rensa): reading the same planted JSONL as plamo-fast, parsing, keying (instruction
  + input), normalizing with plamo-fast's ``normalize_text`` and writing the kept lines, the
  same work as plamo-fast's end to end. A peer that is not installed is skipped with a line
  saying so (``pip install datasketch rensa``).

    .venv/bin/python benches/bench_dedup.py
    .venv/bin/python benches/bench_dedup.py --repeat 7 --json bench-work/dedup.json
    .venv/bin/python benches/bench_dedup.py --peers rensa --rensa-bands 8   # quick
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import random
import shlex
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from bench_common import git_commit, machine_info, package_version, print_header

from plamo_fast import _native
from plamo_fast.data.curation_io import BadRecordError, user_texts
from plamo_fast.data.dedup import answer_of, key_text, question_of
from plamo_fast.reference.matching import dedup_form, same_question

REPO = Path(__file__).resolve().parent.parent
DOLLY = REPO.parent / "shared/corpora/databricks-dolly-15k-ja/databricks-dolly-15k-ja.jsonl"
NGRAM, NUM_PERM = 5, 128
PLANT_RANGE = (0.75, 0.95)
PHRASES = ("を教えてください", "について", "簡潔に", "詳しく", "ですか", "してください", "と",
           "は何", "please", "以下の")  # fmt: skip

# One side of the timing, in a subprocess of this Python (argv[1]: a JSON object of settings):
# imports, then one timed run per "run" line on stdin, answered by a JSON line of its wall and
# CPU seconds (all threads of the process); "done" answers with what the last run removed.
# Every side runs in a process of its own, so the bench's own objects (the ground truth) weigh
# on none, and the driver is idle while a side runs.
WORKER_SCRIPT = r"""
import gc, json, sys, time

cfg = json.loads(sys.argv[1])
t0 = time.perf_counter()
side = cfg["side"]
if side == "datasketch":
    from datasketch import MinHash, MinHashLSH
elif side == "rensa":
    from rensa import RMinHash, RMinHashLSH
elif side == "plamo-fast":
    from pathlib import Path
    from plamo_fast.data.dedup import dedup
else:
    from array import array
    from pathlib import Path
    from plamo_fast import _native
if side in ("datasketch", "rensa"):
    from plamo_fast._native import normalize_text
import_s = time.perf_counter() - t0
n, num_perm, threshold = cfg["ngram"], cfg["num_perm"], cfg["threshold"]


def shingles(text):
    if len(text) < n:
        return {text}
    return {text[i : i + n] for i in range(len(text) - n + 1)}


def forms():
    # "forms": the matching forms made by the bench; "jsonl": the records themselves, parsed,
    # keyed (instruction + input), normalized, and the kept lines written out.
    if cfg["input"] == "forms":
        with open(cfg["texts"], encoding="utf-8") as f:
            for line in f:
                yield json.loads(line), None
        return
    with open(cfg["data"], encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            key = "\n".join(r[k] for k in ("instruction", "input") if (r.get(k) or "").strip())
            yield normalize_text(key), line


def sketch(form):
    if side == "datasketch":
        m = MinHash(num_perm=num_perm)
        m.update_batch([s.encode("utf-8") for s in shingles(form)])
    else:
        m = RMinHash(num_perm=num_perm, seed=42)
        m.update(list(shingles(form)))
    return m


def run_peer():
    # Streaming keep-first: a record with any LSH candidate is removed, else inserted.
    if side == "datasketch":
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        shape = {"bands": lsh.b, "rows": lsh.r}
    else:
        lsh = RMinHashLSH(threshold=threshold, num_perm=num_perm, num_bands=cfg["bands"])
        shape = {"bands": lsh.get_num_bands(), "rows": num_perm // lsh.get_num_bands()}
    removed = []
    out = open(cfg["kept"], "w", encoding="utf-8") if cfg["input"] == "jsonl" else None
    for i, (form, line) in enumerate(forms()):
        m = sketch(form)
        if lsh.query(m):
            removed.append(i)
        else:
            lsh.insert(i, m)
            if out is not None:
                out.write(line)
    if out is not None:
        out.close()
    return {"removed": removed, "lsh": shape}


def run_plamo():
    # The whole command: read and parse the JSONL, key, sketch, verify, cluster, write the
    # kept records and the report.
    summary = dedup(
        [Path(cfg["data"])], Path(cfg["kept"]), near=True, threshold=threshold,
        key="prompt", report_path=Path(cfg["report"]), progress=False, overwrite=True,
    )
    return {"summary": summary}


def run_core():
    # The native Deduper on the peers' input (the matching forms).
    with open(cfg["texts"], encoding="utf-8") as f:
        texts = [json.loads(line) for line in f]
    deduper = _native.Deduper(
        Path(cfg["spill"]), near=True, threshold=threshold, ngram=n, num_perm=num_perm
    )
    deduper.add(texts, [True] * len(texts))
    root = array("I", deduper.finish()[0])
    return {"removed": [i for i, r in enumerate(root) if r != i]}


run = {"plamo-fast": run_plamo, "plamo-fast core": run_core}.get(side, run_peer)
result = {}
print(json.dumps({"import_s": import_s}), flush=True)
for command in sys.stdin:
    if command.strip() != "run":
        break
    result = None
    gc.collect()
    w0, c0 = time.perf_counter(), time.process_time()
    result = run()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    print(json.dumps({"wall_s": wall, "cpu_s": cpu}), flush=True)
print(json.dumps(result, default=str), flush=True)
"""


class Worker:
    """One side's worker process (``WORKER_SCRIPT``)."""

    def __init__(self, name: str, cfg: dict, script: Path, log: Path):
        self.name, self.times, self.cpu = name, [], []
        self._log = open(log, "w")  # noqa: SIM115 (closed by finish)
        self._proc = subprocess.Popen(
            [sys.executable, str(script), json.dumps(cfg)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log, text=True,
        )  # fmt: skip
        self.import_s = self._answer()["import_s"]

    def _answer(self) -> dict:
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait()
            self._log.close()
            tail = "\n".join(Path(self._log.name).read_text().splitlines()[-20:])
            raise SystemExit(f"{self.name} failed with exit code {self._proc.returncode}:\n{tail}")
        return json.loads(line)

    def run(self, timed: bool = True) -> None:
        self._proc.stdin.write("run\n")
        self._proc.stdin.flush()
        answer = self._answer()
        if timed:
            self.times.append(answer["wall_s"])
            self.cpu.append(answer["cpu_s"])

    def finish(self) -> dict:
        """What the last run found (and stops the worker)."""
        self._proc.stdin.write("done\n")
        self._proc.stdin.flush()
        result = self._answer()
        self._proc.wait()
        self._log.close()
        return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=DOLLY, help="input JSONL (instruction/input)")
    p.add_argument("--records", type=int, default=10000, help="distinct records used")
    p.add_argument("--plant", type=float, default=0.10, help="fraction of records copied")
    p.add_argument("--threshold", type=float, default=0.8, help="Jaccard threshold")
    p.add_argument("--seed", type=int, default=0, help="seed of the planted copies")
    p.add_argument("--repeat", type=int, default=5, help="timed rounds (median reported)")
    p.add_argument("--rensa-bands", default="8,16", help="rensa band counts (dividing 128)")
    p.add_argument("--peers", default="datasketch,rensa", help="peers timed (comma-separated)")
    p.add_argument("--no-peer", action="store_true", help="skip datasketch and rensa")
    p.add_argument("--workdir", type=Path, default=REPO / "bench-work" / "dedup")
    p.add_argument("--json", type=Path, default=None, help="also write all results here")
    return p.parse_args(argv)


def shingles(text: str) -> frozenset[str]:
    """Character 5-grams of a matching form (the whole text when shorter)."""
    if len(text) < NGRAM:
        return frozenset((text,))
    return frozenset(text[i : i + NGRAM] for i in range(len(text) - NGRAM + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def form_of(record: dict) -> str:
    return dedup_form(key_text(record, "prompt", ()))


def question_form(record: dict) -> tuple[str, str]:
    """The question's and the answer's forms ("" when absent; no answer without a question)."""
    question = question_of(user_texts(record))
    if question is None:
        return "", ""
    return dedup_form(question), dedup_form(answer_of(record) or "")


def load_distinct(path: Path, cap: int) -> tuple[list[dict], int]:
    """Records with a distinct, non-empty matching form (first of each), and the number read."""
    records, seen, read = [], set(), 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            read += 1
            record = json.loads(line)
            try:
                form = form_of(record)
            except BadRecordError:
                continue
            if form and form not in seen:
                seen.add(form)
                records.append(record)
                if len(records) >= cap:
                    break
    return records, read


def edit_once(text: str, rng: random.Random, pool: str) -> str:
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


def plant_copy(record: dict, rng: random.Random) -> tuple[dict, float] | None:
    """An edited copy whose true Jaccard to ``record`` is near a target in PLANT_RANGE, or None
    when the record is too short for one."""
    fields = [k for k in ("instruction", "input") if isinstance(record.get(k), str)]
    fields = [k for k in fields if record[k].strip()] or fields
    weights = [len(record[k]) + 1 for k in fields]
    original = shingles(form_of(record))
    pool = "".join(c for c in form_of(record) if c.isalnum()) or "あ"
    for _ in range(20):
        target = rng.uniform(*PLANT_RANGE)
        copy = dict(record)
        for _ in range(60):
            field = rng.choices(fields, weights)[0]
            copy[field] = edit_once(copy[field], rng, pool)
            form = form_of(copy)
            j = jaccard(original, shingles(form)) if form else 0.0
            if j <= target:
                break
        if PLANT_RANGE[0] <= j <= PLANT_RANGE[1]:
            return copy, j
    return None


def build_planted(args: argparse.Namespace) -> dict:
    distinct, read = load_distinct(args.data, args.records)
    n = len(distinct)
    rng = random.Random(args.seed)
    want, copies = round(args.plant * n), []
    for i in rng.sample(range(n), n):
        if len(copies) == want:
            break
        made = plant_copy(distinct[i], rng)
        if made is not None:
            copies.append((rng.uniform(i + 0.5, n), made[0], made[1], i))
    items = [(float(i), r, None, i) for i, r in enumerate(distinct)] + copies
    items.sort(key=lambda t: t[0])
    at = {src: k for k, (_, _, j, src) in enumerate(items) if j is None}
    planted = {(at[src], k) for k, (_, _, j, src) in enumerate(items) if j is not None}
    items = [t[:3] for t in items]
    args.workdir.mkdir(parents=True, exist_ok=True)
    data, texts = args.workdir / "planted.jsonl", args.workdir / "planted-forms.jsonl"
    forms = [form_of(r) for _, r, _ in items]
    questions = [question_form(r) for _, r, _ in items]
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for _, r, _ in items))
    texts.write_text("".join(json.dumps(f, ensure_ascii=False) + "\n" for f in forms))
    planted_j = [j for _, _, j in items if j is not None]
    return {"read": read, "distinct": n, "records": len(items), "forms": forms,
            "questions": questions, "planted_jaccard": planted_j, "planted": planted,
            "data": data,
            "texts": texts}  # fmt: skip


def true_pairs(sets: list[frozenset[str]], threshold: float) -> list[tuple[int, int, float]]:
    """Every pair (i < j) with Jaccard >= threshold, exactly: an all-pairs join with prefix and
    size filters (a pair at or above the threshold shares a token in the prefixes of length
    |x| - floor(t |x|) + 1 under one global token order), each candidate verified."""
    freq = Counter(tok for s in sets for tok in s)
    rank = {tok: k for k, (tok, _) in enumerate(sorted(freq.items(), key=lambda x: (x[1], x[0])))}
    ordered = [sorted(rank[t] for t in s) for s in sets]
    index: dict[int, list[int]] = defaultdict(list)
    found = []
    for j in sorted(range(len(sets)), key=lambda k: len(sets[k])):
        size = len(ordered[j])
        prefix = ordered[j][: size - math.floor(threshold * size) + 1]
        candidates = set()
        for tok in prefix:
            for i in index[tok]:
                if len(ordered[i]) >= threshold * size - 1e-9:
                    candidates.add(i)
            index[tok].append(j)
        for i in candidates:
            sim = jaccard(sets[i], sets[j])
            if sim >= threshold:
                found.append((min(i, j), max(i, j), sim))
    return sorted(found)


def question_rule(truth, data, threshold: float) -> list[tuple[int, int, float]]:
    """The true pairs that are also near duplicates by the question rule of dedup --key prompt:
    a record with a question is near only another with the same question (the reference's
    ``same_question``); equal key forms are exact duplicates, always."""
    forms, questions = data["forms"], data["questions"]
    kept = []
    for i, j, sim in truth:
        qi, qj = questions[i], questions[j]
        exact_or_plain = forms[i] == forms[j] or not (qi[0] or qj[0])
        if exact_or_plain or (qi[0] and qj[0] and same_question(qi, qj, threshold, NGRAM)):
            kept.append((i, j, sim))
    return kept


def evaluate(name, worker: Worker, removed: set[int], lsh, data, truth) -> dict:
    times, cpu = worker.times, worker.cpu
    partners: dict[int, list[int]] = defaultdict(list)
    for i, j, _ in truth:
        partners[i].append(j)
        partners[j].append(i)
    found = sum(1 for i, j, _ in truth if i in removed or j in removed)
    wrong = [r for r in removed if not partners[r]]
    chain = [r for r in removed if partners[r] and all(p in removed for p in partners[r])]
    by_band = {}
    for lo, hi in ((0.8, 0.85), (0.85, 0.9), (0.9, 0.95), (0.95, 1.0), (1.0, 1.01)):
        group = [(i, j) for i, j, s in truth if lo <= s < hi]
        hit = sum(1 for i, j in group if i in removed or j in removed)
        by_band[f"[{lo:.2f}, {min(hi, 1.0):.2f}{')' if hi <= 1 else ']'}"] = (hit, len(group))
    wall = statistics.median(times)
    return {
        "name": name,
        "times_s": times,
        "wall_s": wall,
        "cpu_times_s": cpu,
        "cpu_s": statistics.median(cpu),
        "import_s": worker.import_s,
        "records_per_s": data["records"] / wall,
        "lsh": lsh,
        "removed": len(removed),
        "true_pairs": len(truth),
        "pairs_found": found,
        "recall": found / len(truth) if truth else 1.0,
        "recall_by_jaccard": by_band,
        "wrongly_removed": len(wrong),
        "wrongly_removed_examples": [data["forms"][r][:60] for r in sorted(wrong)[:3]],
        "chain_removed": len(chain),
    }


def start_workers(args, data, peers: list[tuple[str, int]]) -> list[Worker]:
    """A worker per side: plamo-fast end to end, its core, and each peer on the matching
    forms (rensa also on the JSONL, end to end)."""
    script, work = args.workdir / "dedup_worker.py", args.workdir
    script.write_text(WORKER_SCRIPT)
    base = {"texts": str(data["texts"]), "data": str(data["data"]), "ngram": NGRAM,
            "num_perm": NUM_PERM, "threshold": args.threshold}  # fmt: skip
    sides = [
        ("plamo-fast", {"side": "plamo-fast", "kept": str(work / "plamo-kept.jsonl"),
                        "report": str(work / "plamo-report.jsonl")}),
        ("plamo-fast core", {"side": "plamo-fast core", "spill": str(work / ".core-spill")}),
    ]  # fmt: skip
    runs = [(p, b, "forms") for p, b in peers]
    runs += [(p, b, "jsonl") for p, b in peers if p == "rensa"]  # datasketch: 10x slower anyway
    for peer, bands, source in runs:
        tag = (peer if peer == "datasketch" else f"{peer}-b{bands}") + f"-{source}"
        cfg = {"side": peer, "bands": bands, "input": source,
               "kept": str(work / f"{tag}-kept.jsonl")}  # fmt: skip
        sides.append((tag, cfg))
    workers = []
    for tag, cfg in sides:
        workers.append(Worker(tag, {**base, **cfg}, script, work / f"{tag}.log"))
    return workers


def time_sides(workers: list[Worker], repeat: int) -> None:
    """One untimed run per side, then ``repeat`` rounds of one timed run per side, the order
    rotated each round (each side goes first in turn), so that load from other work on the
    machine falls on every side alike."""
    for w in workers:
        w.run(timed=False)
    for r in range(repeat):
        k = r % len(workers)
        for w in workers[k:] + workers[:k]:
            w.run()
        print(f"... round {r + 1}: " + ", ".join(f"{w.name} {w.times[-1]:.2f}" for w in workers),
              flush=True)  # fmt: skip


def plamo_result(args, worker: Worker, data, truth) -> tuple[dict, dict, set[int]]:
    """plamo-fast's figures: the records its report removes, and whether the kept file is the
    input less those lines."""
    summary = worker.finish()["summary"]
    out, report = args.workdir / "plamo-kept.jsonl", args.workdir / "plamo-report.jsonl"
    removed = {
        r["line"] - 1
        for line in report.read_text(encoding="utf-8").splitlines()
        for r in json.loads(line)["removed"]
    }
    source = data["data"].read_bytes().splitlines(keepends=True)
    expected = b"".join(line for i, line in enumerate(source) if i not in removed)
    summary["output_matches_report"] = out.read_bytes() == expected
    result = evaluate("plamo-fast", worker, removed, summary["lsh"], data, truth)
    return result, summary, removed


def core_result(args, worker: Worker, data, truth) -> dict:
    bands, rows = _native.Deduper.lsh_shape(args.threshold, NUM_PERM)
    removed = set(worker.finish()["removed"])
    lsh = {"bands": bands, "rows": rows}
    return evaluate("plamo-fast core", worker, removed, lsh, data, truth)


def peer_result(worker: Worker, data, truth) -> dict:
    res = worker.finish()
    lsh = res["lsh"]
    name = "datasketch" if worker.name.startswith("datasketch") else "rensa"
    if name == "rensa":
        name += f" ({lsh['bands']} x {lsh['rows']})"
    name += ", JSONL end to end" if worker.name.endswith("jsonl") else ", matching forms"
    return evaluate(name, worker, set(res["removed"]), lsh, data, truth)


def fmt_row(s: dict) -> str:
    lsh = s["lsh"]
    return (
        f"| {s['name']} | {s['wall_s']:.2f} | {min(s['times_s']):.2f}-{max(s['times_s']):.2f} "
        f"| {s['cpu_s']:.2f} | {s['records_per_s']:,.0f} | {lsh['bands']} x {lsh['rows']} "
        f"| {s['removed']:,} "
        f"| **{100 * s['recall']:.2f} %** ({s['pairs_found']}/{s['true_pairs']}) "
        f"| **{s['wrongly_removed']}** | {s['chain_removed']} |"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.data.is_file():
        print(f"skipped: corpus {args.data} not found")
        return 0
    rensa_bands = [int(b) for b in args.rensa_bands.split(",") if b]
    if any(b <= 0 or NUM_PERM % b for b in rensa_bands):
        raise SystemExit(f"--rensa-bands: each must divide {NUM_PERM}")
    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    machine = machine_info()
    wanted = set() if args.no_peer else {p.strip() for p in args.peers.split(",") if p.strip()}
    if wanted - {"datasketch", "rensa"}:
        raise SystemExit(f"--peers: unknown {sorted(wanted - {'datasketch', 'rensa'})}")
    peers = [("datasketch", 0)] if "datasketch" in wanted else []
    peers += [("rensa", b) for b in rensa_bands] if "rensa" in wanted else []
    absent = sorted({p for p, _ in peers if importlib.util.find_spec(p) is None})
    peers = [(p, b) for p, b in peers if p not in absent]
    versions = {"plamo-fast": package_version(sys.executable, "plamo-fast"),
                "plamo-fast commit": git_commit(REPO)}  # fmt: skip
    for pkg in sorted({p for p, _ in peers}):
        versions[pkg] = package_version(sys.executable, pkg)

    t0 = time.perf_counter()
    data = build_planted(args)
    sets = [shingles(f) for f in data["forms"]]
    truth = true_pairs(sets, args.threshold)
    truth_rule = question_rule(truth, data, args.threshold)
    apart = set(truth) - set(truth_rule)
    apart_planted = sum((i, j) in data["planted"] for i, j, _ in apart)
    build_s = time.perf_counter() - t0
    pj = data["planted_jaccard"]
    print_header(command, machine, versions)
    print(
        f"input:   {args.data.name}: {data['read']:,} read, {data['distinct']:,} distinct forms "
        f"+ {len(pj):,} planted copies (true Jaccard {min(pj):.3f}-{max(pj):.3f}, median "
        f"{statistics.median(pj):.3f}; {sum(j >= args.threshold for j in pj)} at or above "
        f"{args.threshold}) = {data['records']:,} records; {len(truth):,} true pairs >= "
        f"{args.threshold} (exact all-pairs join; built in {build_s:.1f} s, untimed), "
        f"{len(truth_rule):,} of them also by the question rule "
        f"({sum(bool(q[0]) for q in data['questions']):,} records with a question); the "
        f"{len(apart):,} kept apart: {apart_planted} planted copy-source pairs, "
        f"{len(apart) - apart_planted} pairs of the corpus itself"
    )
    for name in absent:
        print(f"skipped: peer {name} is not installed (pip install {name})")
    print(f"setup:   key prompt, {NGRAM}-gram shingles of the matching form, threshold "
          f"{args.threshold}, keep first; repeat {args.repeat}", flush=True)  # fmt: skip

    workers = start_workers(args, data, peers)
    load_before = os.getloadavg()
    time_sides(workers, args.repeat)
    load_after = os.getloadavg()
    print(f"load average (1, 5, 15 min) before the timed rounds {load_before}, after "
          f"{load_after}")  # fmt: skip
    plamo, summary, removed = plamo_result(args, workers[0], data, truth_rule)
    key_only = evaluate("plamo-fast against the key-only truth", workers[0], removed,
                        plamo["lsh"], data, truth)  # fmt: skip
    sides = [plamo, key_only, core_result(args, workers[1], data, truth)]
    sides += [peer_result(w, data, truth) for w in workers[2:]]
    print()
    print("| side | wall s (median) | min-max | CPU s (median) | records/s | LSH b x r | removed "
          "| recall of true pairs | wrong removals | chain removals |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for s in sides:
        print(fmt_row(s))
    print()
    labels = list(plamo["recall_by_jaccard"])
    print("| recall by true Jaccard | " + " | ".join(labels) + " |")
    print("| --- |" + " --- |" * len(labels))
    for s in sides:
        cells = [f"{hit}/{n}" for hit, n in s["recall_by_jaccard"].values()]
        print(f"| {s['name']} | " + " | ".join(cells) + " |")
    ratios = {f"{s['name']} time / plamo-fast time": s["wall_s"] / plamo["wall_s"]
              for s in sides[3:]}  # fmt: skip
    ratios.update({f"{s['name']} CPU time / plamo-fast CPU time": s["cpu_s"] / plamo["cpu_s"]
                   for s in sides[3:]})  # fmt: skip
    for name, value in ratios.items():
        print(f"{name}: {value:.2f}x")
    print(
        f"plamo-fast summary: candidates {summary['near_candidate_pairs']}, verified "
        f"{summary['near_verified_pairs']}, exact pairs {summary['exact_duplicate_pairs']}, "
        f"kept apart by question {summary['near_pairs_kept_apart_by_question']}, same question "
        f"by edits and answer {summary['near_pairs_same_question_by_edits_and_answer']}; kept "
        f"file = input minus the report's removed lines: "
        f"{'yes' if summary['output_matches_report'] else 'NO'}"
    )
    figures = {"bench": "dedup", "command": command, "machine": machine, "versions": versions,
               "records": data["records"], "true_pairs": len(truth), "sides": sides,
               "plamo_summary": summary, "ratios": ratios,
               "load_average": {"before": load_before, "after": load_after}}  # fmt: skip
    print(json.dumps(figures, ensure_ascii=False, default=str))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2, ensure_ascii=False, default=str) + "\n")
    return 0 if summary["output_matches_report"] else 1


if __name__ == "__main__":
    sys.exit(main())
