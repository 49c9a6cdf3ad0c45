"""``plamo-fast synth math``: every generator's answer is confirmed by the math verifier against
its own solution and by sympy (tests/test_synth_math_checks.py); ids are distinct and are the
hash of the params; seeds reproduce; the holdout never shares an id; exhaustion fails loudly; the
output feeds ``sample``, ``score --verifier math`` and ``pack``."""

from __future__ import annotations

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
from plamo_fast.synth.record import FINAL, problem_id
from plamo_fast.synth.registry import DIFFICULTIES, LANGS, load_all
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
