"""``plamo-fast synth math``: N distinct template math problems with worked solutions, JSONL.

Each record is drawn as: a generator (weights from ``--mix``), a difficulty (uniform over
``--difficulty``), then the generator's numbers from the one seeded RNG. A problem whose id
was already written is redrawn with new numbers from the same generator and difficulty (ids
hash the params, so dedup is on the mathematics, not on the text); when one generator and
difficulty gives :data:`EXHAUSTED_AFTER` duplicates in a row its space is exhausted for the
requested count and the run stops with an error naming it, writing nothing.

``--holdout F`` sends the records whose id hash falls below F (:func:`id_fraction`) to a sibling
file ``OUT-stem.test.jsonl``; train and test never share an id, and the split of a problem does
not depend on the seed, ``-n`` or the mix. The held-out problems are also written as an MT-Bench
question set for ``plamo-fast eval mt-bench`` (:func:`bench_paths`: FastChat's ``question.jsonl``
layout, category ``math``, and reference answers holding the exact ``answer``), so that a judge
can grade models on them with reference-guided prompts.
"""

from __future__ import annotations

import json
import time
from bisect import bisect
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from random import Random

from plamo_fast.errors import UsageError
from plamo_fast.outputs import atomic_output, check_output
from plamo_fast.synth.record import (
    build_record,
    features_encoder,
    id_fraction,
    id_hasher,
    params_texts,
    record_line,
)
from plamo_fast.synth.registry import DIFFICULTIES, LANGS, Generator, Problem, Spec, load_all

EXHAUSTED_AFTER = 2000  # duplicates in a row from one generator and difficulty
WRITE_BATCH = 4096  # lines per write
BENCH_FILES = ("questions", "references")


def parse_mix(text: str | None, registry: dict[str, Generator]) -> dict[str, float]:
    """``arithmetic=3,fractions.add=1``: a family's weight is shared equally by its generators;
    a generator's own weight replaces its share. Without a mix every generator weighs 1."""
    if not text:
        return dict.fromkeys(registry, 1.0)
    families: dict[str, list[str]] = {}
    for name, gen in registry.items():
        families.setdefault(gen.family, []).append(name)
    weights: dict[str, float] = {}
    own: dict[str, float] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        try:
            weight = float(value) if sep else 1.0
        except ValueError:
            raise UsageError(f"--mix {item!r}: the weight is not a number") from None
        if not weight >= 0 or weight == float("inf"):
            raise UsageError(f"--mix {item!r}: a weight is a finite number >= 0")
        if key in registry:
            own[key] = weight
        elif key in families:
            for name in families[key]:
                weights[name] = weights.get(name, 0.0) + weight / len(families[key])
        else:
            known = ", ".join(sorted(families))
            raise UsageError(f"--mix: unknown generator or family {key!r} (families: {known})")
    weights.update(own)
    weights = {k: w for k, w in weights.items() if w > 0}
    if not weights:
        raise UsageError("--mix gives every generator weight 0")
    return weights


def parse_features(items: list[str] | None) -> dict[str, str]:
    """``["carries=all", "eliminate=y"]`` (each item may also be comma-separated)."""
    want: dict[str, str] = {}
    for item in items or []:
        for part in item.split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise UsageError(f"--feature takes KEY=VALUE, got {part!r}")
            want[key.strip()] = value.strip()
    return want


def _select(
    weights: dict[str, float], want: dict[str, str], registry: dict[str, Generator]
) -> dict[str, float]:
    """The generators of the mix that take every wanted feature value (``eliminate=z`` keeps
    systems.three and drops systems.two, which has no z)."""
    if not want:
        return weights
    chosen = {
        name: w
        for name, w in weights.items()
        if all(value in registry[name].features.get(key, ()) for key, value in want.items())
    }
    if not chosen:
        wanted = ", ".join(f"{k}={v}" for k, v in want.items())
        raise UsageError(
            f"--feature {wanted}: no generator in the mix takes it (see `plamo-fast synth list`)"
        )
    return chosen


def parse_difficulty(text: str | None) -> tuple[str, ...]:
    if not text:
        return DIFFICULTIES
    chosen = tuple(dict.fromkeys(d.strip() for d in text.split(",") if d.strip()))
    bad = [d for d in chosen if d not in DIFFICULTIES]
    if bad or not chosen:
        raise UsageError(f"--difficulty takes {', '.join(DIFFICULTIES)} (comma-separated)")
    return chosen


def _draw(
    n: int,
    *,
    seed: int = 0,
    lang: str = "ja",
    mix: str | None = None,
    difficulty: str | None = None,
    features: list[str] | None = None,
    made: dict | None = None,
) -> Iterator[tuple[Generator, Problem, str, str, str]]:
    """``n`` problems with distinct ids: ``(generator, problem, id, params JSON, difficulty)``.
    When the draws are done, ``made`` (if given) holds the count per (generator name,
    difficulty)."""
    if lang not in LANGS:
        raise UsageError(f"--lang takes {' or '.join(LANGS)}, got {lang!r}")
    if n < 0:
        raise UsageError("-n must be at least 0")
    registry = load_all()
    want = parse_features(features)
    weights = _select(parse_mix(mix, registry), want, registry)
    difficulties = parse_difficulty(difficulty)
    gens = [registry[name] for name in sorted(weights)]
    cum, total = [], 0.0
    for gen in gens:
        total += weights[gen.name]
        cum.append(total)
    hashers = [id_hasher(gen.name, gen.version) for gen in gens]
    specs = {d: Spec(d, lang, want) for d in difficulties}
    rng = Random(seed)
    random = rng.random
    seen: set[str] = set()
    nd, last = len(difficulties), len(gens) - 1
    distinct = [0] * (len(gens) * nd)  # per generator and difficulty
    for _ in range(n):
        g = min(bisect(cum, random() * total), last)
        k = int(random() * nd)
        gen, d = gens[g], difficulties[k]
        spec, make, hash_id = specs[d], gen.make, hashers[g]
        misses = 0
        while True:
            problem = make(rng, spec)
            params_json, params_repr = params_texts(problem.params)
            rid = hash_id(params_repr)
            if rid not in seen:
                break
            misses += 1
            if misses >= EXHAUSTED_AFTER:
                raise UsageError(
                    f"generator {gen.name} ({d}) is exhausted: {distinct[g * nd + k]} distinct "
                    f"problems, then {EXHAUSTED_AFTER} duplicates in a row; ask for fewer "
                    "(-n), give it less weight (--mix) or allow more difficulties"
                )
        seen.add(rid)
        distinct[g * nd + k] += 1
        yield gen, problem, rid, params_json, d
    if made is not None:
        for g, gen in enumerate(gens):
            for k, d in enumerate(difficulties):
                if distinct[g * nd + k]:
                    made[gen.name, d] = distinct[g * nd + k]


def generate(
    n: int,
    *,
    seed: int = 0,
    lang: str = "ja",
    mix: str | None = None,
    difficulty: str | None = None,
    features: list[str] | None = None,
) -> Iterator[dict]:
    """Yields ``n`` records with distinct ids (see the module text); the same records, in the
    same order, as :func:`synth_math` writes with these options."""
    draws = _draw(n, seed=seed, lang=lang, mix=mix, difficulty=difficulty, features=features)
    for gen, problem, rid, _, d in draws:
        yield build_record(gen, problem, rid, lang, d)


def holdout_path(out: Path) -> Path:
    """The holdout file beside ``out``: ``math.jsonl`` -> ``math.test.jsonl``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.test{out.suffix or '.jsonl'}")


def bench_paths(out: Path) -> tuple[Path, Path]:
    """The held-out split as MT-Bench files: ``math.test.questions.jsonl`` and
    ``math.test.references.jsonl`` beside ``math.jsonl``."""
    test = holdout_path(out)
    return test.with_suffix(".questions.jsonl"), test.with_suffix(".references.jsonl")


def _bench_lines(record_id: str, problem: Problem) -> tuple[str, str]:
    """A held-out problem's FastChat question line and reference-answer line."""
    q = {"question_id": record_id, "category": "math", "turns": [problem.question]}
    ref = {"question_id": record_id, "model_id": "synth-math",
           "choices": [{"index": 0, "turns": [problem.answer]}]}  # fmt: skip
    return json.dumps(q, ensure_ascii=False), json.dumps(ref, ensure_ascii=False)


def synth_math(
    output: Path,
    n: int,
    *,
    seed: int = 0,
    lang: str = "ja",
    mix: str | None = None,
    difficulty: str | None = None,
    features: list[str] | None = None,
    holdout: float = 0.0,
    overwrite: bool = False,
) -> dict:
    """Writes the records to ``output`` (and the holdout to :func:`holdout_path`); returns the
    counts per generator, difficulty and split."""
    if not 0.0 <= holdout < 1.0:
        raise UsageError("--holdout takes a fraction in [0, 1)")
    output = Path(output)
    made: dict[tuple[str, str], int] = {}
    draws = _draw(
        n, seed=seed, lang=lang, mix=mix, difficulty=difficulty, features=features, made=made
    )
    counts = {"train": 0, "test": 0}
    started = time.perf_counter()
    with ExitStack() as stack:
        outs = {"train": output}
        if holdout > 0:
            outs["test"] = holdout_path(output)
            outs["questions"], outs["references"] = bench_paths(output)
            for path in list(outs.values())[1:]:
                check_output(path, command="synth-math", overwrite=overwrite, folder=False)
        files = {}
        for split, path in outs.items():
            partial = stack.enter_context(
                atomic_output(path, command="synth-math", overwrite=overwrite, folder=False)
            )
            files[split] = stack.enter_context(open(partial, "w", encoding="utf-8"))
        buffers: dict[str, list[str]] = {split: [] for split in outs if split not in BENCH_FILES}
        features_json = features_encoder()
        for gen, problem, rid, params_json, d in draws:
            split = "test" if holdout and id_fraction(rid) < holdout else "train"
            buffer = buffers[split]
            features = features_json(gen.name, d, problem.features)
            buffer.append(record_line(gen, problem, rid, lang, features, params_json))
            if split == "test":
                for name, bench_line in zip(BENCH_FILES, _bench_lines(rid, problem), strict=True):
                    files[name].write(bench_line + "\n")
            if len(buffer) >= WRITE_BATCH:
                files[split].write("\n".join(buffer) + "\n")
                buffer.clear()
            counts[split] += 1
        for split, buffer in buffers.items():
            if buffer:
                files[split].write("\n".join(buffer) + "\n")
    seconds = time.perf_counter() - started
    by_generator: Counter = Counter()
    by_difficulty: Counter = Counter()
    for (name, d), count in made.items():
        by_generator[name] += count
        by_difficulty[d] += count
    summary = {
        "records": counts["train"] + counts["test"],
        "train": counts["train"],
        "output": str(output),
        "by_generator": dict(sorted(by_generator.items())),
        "by_difficulty": {d: by_difficulty[d] for d in DIFFICULTIES if d in by_difficulty},
        "seconds": round(seconds, 3),
    }
    if holdout > 0:
        summary["test"] = counts["test"]
        summary["test_output"] = str(outs["test"])
        summary["questions_output"] = str(outs["questions"])
        summary["references_output"] = str(outs["references"])
    return summary
