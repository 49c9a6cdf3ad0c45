"""``plamo-fast synth math``: every generator's answer is confirmed by the math verifier against
its own solution and by sympy (tests/test_synth_math_checks.py); ids are distinct and are the
hash of the params; seeds reproduce; the holdout never shares an id; exhaustion fails loudly; the
output feeds ``sample``, ``score --verifier math`` and ``pack``."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest

from plamo_fast.cli import main
from plamo_fast.data.conversation import prompt_messages, sft_conversation
from plamo_fast.errors import UsageError
from plamo_fast.sample.verify_math import verify
from plamo_fast.synth.numbers import dec, frac, mixed
from plamo_fast.synth.record import (
    FINAL,
    build_record,
    features_encoder,
    params_texts,
    problem_id,
    record_line,
)
from plamo_fast.synth.registry import DIFFICULTIES, LANGS, Problem, load_all
from plamo_fast.synth.run import generate, holdout_path, synth_math

REGISTRY = load_all()
NAMES = sorted(REGISTRY)
VERIFIED_PER_CELL = 350  # per generator, difficulty and language: 2,100 per generator
SYMPY_PER_CELL = 12  # sympy solves are slow; the `slow` sweep checks 400 per cell


def answer_value(text: str) -> Fraction:
    """The value of an ``answer`` field: an integer, decimal, ``p/q`` or mixed ``w p/q``."""
    m = re.fullmatch(r"(-?)(\d+) (\d+/\d+)", text)
    if m:
        whole = int(m[2]) + Fraction(m[3])
        return -whole if m[1] else whole
    return Fraction(text)


def checks():
    """The sympy checks (tests/test_synth_math_checks.py); skips where sympy is absent."""
    pytest.importorskip("sympy")
    import test_synth_math_checks

    return test_synth_math_checks


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def cell(name: str, difficulty: str, lang: str, n: int, seed: int = 0) -> list[dict]:
    records = generate(n, seed=seed, lang=lang, mix=name, difficulty=difficulty)
    # Through JSON, as a user reads them.
    return [json.loads(json.dumps(r, ensure_ascii=False)) for r in records]


def test_at_least_25_generators_in_both_languages():
    assert len(REGISTRY) >= 25
    families = {g.family for g in REGISTRY.values()}
    for family in (
        "arithmetic",
        "fractions",
        "decimals",
        "percent",
        "ratios",
        "linear",
        "systems",
        "quadratics",
        "sequences",
        "units",
        "shopping",
        "speed",
        "work",
        "ages",
        "mixtures",
    ):
        assert family in families


@pytest.mark.parametrize("name", NAMES)
def test_every_answer_passes_the_verifier_against_its_own_solution(name):
    for difficulty in DIFFICULTIES:
        for lang in LANGS:
            for r in cell(name, difficulty, lang, VERIFIED_PER_CELL, seed=11):
                solution = r["messages"][1]["content"]
                assert solution.endswith(f"\n\n{FINAL[lang]}{r['answer']}}}"), solution
                assert verify(solution, r["answer"]) is True, (name, r)
                assert r["features"]["difficulty"] == difficulty
                # A wrong answer is caught (the check can fail).
                wrong = str(answer_value(r["answer"]) + 1)
                assert verify(solution, wrong) is False


def _sympy_sweep(name: str, per_cell: int, seed: int) -> None:
    sympy_checks = checks()
    for difficulty in DIFFICULTIES:
        for lang in LANGS:
            for r in cell(name, difficulty, lang, per_cell, seed=seed):
                value = sympy_checks.sympify(sympy_checks.expected(r))
                assert value.is_Rational, (name, value)  # exact, never a float
                assert value == sympy_checks.answer_value(r["answer"]), (name, r)


@pytest.mark.parametrize("name", NAMES)
def test_sympy_confirms_every_answer(name):
    _sympy_sweep(name, SYMPY_PER_CELL, seed=3)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_sympy_confirms_every_answer_thoroughly(name):
    _sympy_sweep(name, 400, seed=4)


def test_ids_are_distinct_and_hash_generator_version_and_params():
    records = list(generate(20_000, seed=2))
    ids = [r["id"] for r in records]
    assert len(set(ids)) == len(ids)
    for r in records[:2000]:
        r = json.loads(json.dumps(r, ensure_ascii=False))
        gen = REGISTRY[r["generator"]]
        assert r["id"] == problem_id(gen.name, gen.version, r["params"])


def test_same_seed_same_problems_and_the_language_changes_only_the_words(tmp_path):
    a, b, c, en = (tmp_path / f"{k}.jsonl" for k in "abce")
    synth_math(a, 3000, seed=7)
    synth_math(b, 3000, seed=7)
    synth_math(c, 3000, seed=8)
    synth_math(en, 3000, seed=7, lang="en")
    assert a.read_bytes() == b.read_bytes()
    assert [r["id"] for r in read(a)] != [r["id"] for r in read(c)]
    ja_records, en_records = read(a), read(en)
    assert [r["id"] for r in ja_records] == [r["id"] for r in en_records]
    assert [r["answer"] for r in ja_records] == [r["answer"] for r in en_records]
    assert all("答え: \\boxed{" in r["messages"][1]["content"] for r in ja_records)
    assert all("Answer: \\boxed{" in r["messages"][1]["content"] for r in en_records)


def test_holdout_splits_by_id_and_train_and_test_never_share_one(tmp_path):
    out = tmp_path / "math.jsonl"
    summary = synth_math(out, 10_000, seed=1, holdout=0.2)
    test = holdout_path(out)
    assert test.name == "math.test.jsonl"
    train_ids = {r["id"] for r in read(out)}
    test_ids = {r["id"] for r in read(test)}
    assert not train_ids & test_ids
    assert len(train_ids) + len(test_ids) == 10_000 == summary["records"]
    assert 1700 < len(test_ids) < 2300
    # The split is a property of the problem: another seed puts a shared problem on the same side.
    other = tmp_path / "other.jsonl"
    synth_math(other, 10_000, seed=2, holdout=0.2)
    other_test = {r["id"] for r in read(holdout_path(other))}
    other_train = {r["id"] for r in read(other)}
    assert not (train_ids & other_test) and not (test_ids & other_train)
    assert (train_ids & other_train) or (test_ids & other_test)


def test_an_exhausted_generator_fails_loudly_and_writes_nothing(tmp_path):
    out = tmp_path / "few.jsonl"
    with pytest.raises(UsageError, match=r"work.together \(easy\) is exhausted"):
        synth_math(out, 100_000, mix="work.together", difficulty="easy")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_mix_weights_families_and_generators():
    counts = Counter(
        r["generator"] for r in generate(8000, seed=3, mix="arithmetic=3,fractions.add=1")
    )
    assert set(counts) == {f"arithmetic.{k}" for k in ("add", "sub", "mul", "div", "order")} | {
        "fractions.add"
    }
    arithmetic = sum(v for k, v in counts.items() if k.startswith("arithmetic."))
    assert 2.6 < arithmetic / counts["fractions.add"] < 3.4
    with pytest.raises(UsageError, match="unknown generator or family 'algebra'"):
        list(generate(1, mix="algebra=1"))
    with pytest.raises(UsageError, match="weight 0"):
        list(generate(1, mix="arithmetic=0"))


@pytest.mark.parametrize(
    ("feature", "names"),
    [
        ("carries=all", {"arithmetic.add"}),
        ("eliminate=y", {"systems.two", "systems.three"}),
        ("reduces=no", {"fractions.add", "fractions.muldiv"}),
    ],
)
def test_a_wanted_feature_selects_and_fixes_it(feature, names):
    key, value = feature.split("=")
    records = [json.loads(json.dumps(r)) for r in generate(150, seed=5, features=[feature])]
    assert {r["generator"] for r in records} == names
    for r in records:
        assert r["features"][key] == value
        checks().expected(r)  # checks carries / reduces independently
    if key == "eliminate":
        for r in records:
            assert f"で {value} を消去すると" in r["messages"][1]["content"]
    with pytest.raises(UsageError, match="carries=many: no generator in the mix takes it"):
        list(generate(1, features=["carries=many"]))
    with pytest.raises(UsageError, match="no generator in the mix takes it"):
        list(generate(1, mix="fractions", features=["carries=all"]))
    assert {r["generator"] for r in generate(20, features=["eliminate=z"])} == {"systems.three"}


def test_synth_to_score_math_gives_every_solution_full_marks(tmp_path):
    synth = tmp_path / "math.jsonl"
    assert main(["synth", "math", "-n", "600", "--seed", "9", "-o", str(synth)]) == 0
    records = read(synth)
    for r in records:  # what sample reads (the problem) and pack trains (the solution)
        assert prompt_messages(r) == [r["messages"][0]]
        assert sft_conversation(r).trained == [1]
    candidates = tmp_path / "candidates.jsonl"
    wrong = dict(records[0], answer=str(answer_value(records[0]["answer"]) + 1))
    rows = [dict(r, candidates=[{"text": r["messages"][1]["content"]}]) for r in records]
    rows.append(dict(wrong, candidates=[{"text": wrong["messages"][1]["content"]}]))
    candidates.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    scored = tmp_path / "scored.jsonl"
    assert main(["score", str(candidates), "-o", str(scored), "--verifier", "math", "-q"]) == 0
    scores = [r["candidates"][0]["score"] for r in read(scored)]
    assert scores == [1.0] * len(records) + [0.0]


def test_cli_refuses_an_existing_output_and_bad_options(tmp_path, capsys):
    out = tmp_path / "m.jsonl"
    out.write_text("keep\n")
    assert main(["synth", "math", "-n", "5", "-o", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert out.read_text() == "keep\n"
    assert main(["synth", "math", "-n", "5", "-o", str(out), "--overwrite"]) == 0
    assert len(read(out)) == 5
    assert main(["synth", "math", "-n", "5", "-o", str(tmp_path / "x.jsonl"), "--lang", "fr"]) == 1
    assert (
        main(
            ["synth", "math", "-n", "5", "-o", str(tmp_path / "x.jsonl"), "--difficulty", "extreme"]
        )
        == 1
    )
    assert (
        main(["synth", "math", "-n", "5", "-o", str(tmp_path / "x.jsonl"), "--holdout", "1"]) == 1
    )
    assert not (tmp_path / "x.jsonl").exists()
    assert main(["synth", "list"]) == 0
    assert "systems.two" in capsys.readouterr().out


# The output bytes are pinned: the same seed must give the same file across releases (a change to
# a generator's numbers or wording bumps its version, and these digests with it). sha256, first 16
# hex digits; per generator: 300 records in Japanese then 300 in English, seed 1, all difficulties.
PINNED_GENERATORS = {
    "ages.problems": "23cdcf0fd48a54ad",
    "arithmetic.add": "806ab447527910ae",
    "arithmetic.div": "ff006bc847b8626a",
    "arithmetic.mul": "283b2a7418881ade",
    "arithmetic.order": "04a4268c2a013499",
    "arithmetic.sub": "309d82d9a1cd3817",
    "classic.crane_turtle": "d6cc4deb6a8b81d0",
    "classic.trees": "aa753a7dfd025d59",
    "decimals.arith": "91ccbd0889443d28",
    "fractions.add": "c6fa93cc44fea996",
    "fractions.mixed": "f8cc19238c01a012",
    "fractions.muldiv": "1a05d27a3c1e4f62",
    "linear.both_sides": "37a3f10d6d5b43ed",
    "linear.one_side": "1a9589f17b7178af",
    "mixtures.salt": "903afd6cd3d5c005",
    "percent.change": "2d6efb4d6f4dd4d0",
    "percent.of": "5319b049f9e1db87",
    "percent.ratio": "bc73c25ccfcde4e4",
    "quadratics.roots": "17eb6ea187faac7c",
    "ratios.proportion": "69af57664f6a101a",
    "ratios.split": "9e9438537e999396",
    "sequences.arithmetic": "09758e14e7873414",
    "sequences.geometric": "81cb0020fb2f1fb9",
    "shopping.budget": "aea4b7cf06fd8081",
    "shopping.change": "369d27a0b84de5ee",
    "speed.basic": "6274f4c59f8a0e92",
    "speed.meet": "67ca5f51b52683b5",
    "systems.three": "cfa81c489716b013",
    "systems.two": "f2987dffb5851f1e",
    "units.convert": "b8fce1119b538707",
    "units.rate": "1fd78baa1be90499",
    "work.together": "f4ede0e38d327810",
}


def test_every_generator_gives_the_pinned_bytes_for_its_seed():
    assert sorted(PINNED_GENERATORS) == NAMES
    got = {}
    for name in NAMES:
        h = hashlib.sha256()
        for lang in LANGS:
            for r in generate(300, seed=1, lang=lang, mix=name):
                h.update(json.dumps(r, ensure_ascii=False).encode() + b"\n")
        got[name] = h.hexdigest()[:16]
    assert got == PINNED_GENERATORS


@pytest.mark.parametrize(
    ("options", "digests"),
    [
        ({"seed": 0}, ("bd21539d253805cbb9bb9a19ccfe6a295fd3fcee906f7cc4e67c492241aed312",)),
        (
            {"seed": 1, "lang": "en"},
            ("1c1b21a36085296c527c62cfc44eef9e9fb567167f142cfaf3e448636959d8ac",),
        ),
        (
            {"seed": 4, "lang": "en", "difficulty": "easy", "holdout": 0.2},
            (
                "2e7124cb2724f2fc5f25aa37e6490609b1e29a73bed809e7e044e9aa3008ef29",
                "3b3bb74de5314c2a56b7e09a528ba1ddf667c48b3717d6da96140869c6374b87",
            ),
        ),
    ],
)
def test_synth_math_writes_the_pinned_file_for_a_seed(tmp_path, options, digests):
    out = tmp_path / "math.jsonl"
    n = 5000 if "holdout" in options else 20_000
    synth_math(out, n, **options)
    files = [out, holdout_path(out)][: len(digests)]
    assert tuple(hashlib.sha256(f.read_bytes()).hexdigest() for f in files) == digests


def test_record_line_is_json_dumps_of_the_record():
    """synth_math writes record_line, generate yields build_record: one text, even for strings
    that need escaping (quotes, backslashes, controls, non-BMP) and for every JSON value type."""
    gen = REGISTRY["fractions.add"]
    tricky = 'a "quoted" \\ back\tslash\x00\x1f\u2028 漢字 😀'
    problem = Problem(
        params={"rows": [[1, -2, 3]], "k": tricky, "big": 10**30},
        features={"reduces": True, "same_denominator": False, "digits": 3, "w": tricky},
        question=tricky,
        steps=tricky + "\n1/2",
        answer=tricky,
    )
    record_id = problem_id(gen.name, gen.version, problem.params)
    params_json = params_texts(problem.params)[0]
    encode_features = features_encoder()
    for lang in LANGS:
        for _ in range(2):  # encoded, then from the cache
            features_json = encode_features(gen.name, "hard", problem.features)
            line = record_line(gen, problem, record_id, lang, features_json, params_json)
            record = build_record(gen, problem, record_id, lang, "hard")
            assert line == json.dumps(record, ensure_ascii=False)
        assert json.loads(line)["answer"] == tricky
    assert encode_features(gen.name, "easy", {}) == '{"difficulty": "easy"}'


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"a": 12, "b": -3, "op": "add", "rows": [[1, -2, 3], [4, 5, -6]], "big": 10**40},
        {"from": "秒", "to": "時間", "value": "3/4", "nested": {"x": [1, []]}},
        {"s": "it's"},  # repr switches to double quotes
        {"s": 'say "hi"'},
        {"s": "back\\slash"},
        {"s": "tab\there"},
        {"s": "line\u2028sep"},  # printable to JSON, escaped by repr
        {"s": "nbsp\xa0"},
        {"it's": 1},
    ],
)
def test_params_texts_are_json_and_repr(params):
    """The id hashes the repr that params_texts derives from the JSON: it must be repr exactly."""
    assert params_texts(params) == (json.dumps(params, ensure_ascii=False), repr(params))


def _json_shaped(value) -> bool:
    """Str keys; ints, strings, lists and dicts of them: no bools, None, floats or tuples."""
    if type(value) is dict:
        return all(type(k) is str and _json_shaped(v) for k, v in value.items())
    if type(value) is list:
        return all(_json_shaped(v) for v in value)
    return type(value) in (int, str)


@pytest.mark.parametrize("name", NAMES)
def test_params_are_json_shaped_and_the_id_hashes_their_repr(name):
    """The contracts params_texts and features_encoder rely on, on every generator, difficulty
    and language."""
    gen = REGISTRY[name]
    types: dict[str, type] = {}
    for difficulty in DIFFICULTIES:
        for lang in LANGS:
            for r in generate(300, seed=13, lang=lang, mix=name, difficulty=difficulty):
                assert _json_shaped(r["params"]), r["params"]
                assert r["id"] == problem_id(gen.name, gen.version, r["params"])
                for key, value in r["features"].items():  # one type per feature (the
                    types.setdefault(key, type(value))  # features_encoder cache needs it)
                    assert type(value) is types[key], (key, value)


def _decimal_reference(q: Fraction) -> str | None:
    """The exact decimal of ``q`` the slow, obvious way (None when it does not terminate)."""
    for places in range(40):
        scaled_q = q * 10**places
        if scaled_q.denominator == 1:
            sign, digits = (
                ("-" if q < 0 else ""),
                str(abs(scaled_q.numerator)).rjust(places + 1, "0"),
            )
            whole, part = digits[: len(digits) - places], digits[len(digits) - places :]
            part = part.rstrip("0")
            return f"{sign}{whole}.{part}" if part else f"{sign}{whole}"
    return None


def test_integer_rationals_agree_with_fraction():
    """frac, mixed and dec work on integer numerators and denominators: the text is the one
    Fraction arithmetic gives, for every sign and every reducible case."""
    for n in range(-150, 151):
        for d in [*range(-40, 0), *range(1, 41), 64, 80, 125, 1000, 1024, 3000]:
            q = Fraction(n, d)
            assert frac(n, d) == (str(q.numerator) if q.denominator == 1 else str(q)), (n, d)
            if q.denominator != 1 and abs(q) > 1:
                w, r = divmod(abs(q.numerator), q.denominator)
                assert mixed(n, d) == f"{'-' if q < 0 else ''}{w} {r}/{q.denominator}", (n, d)
            else:
                assert mixed(n, d) == frac(n, d)
            expected = _decimal_reference(q)
            if expected is None:
                with pytest.raises(ValueError, match="no terminating decimal"):
                    dec(n, d)
            else:
                assert dec(n, d) == expected, (n, d)
    with pytest.raises(ZeroDivisionError):
        frac(1, 0)
