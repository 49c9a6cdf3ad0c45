"""What a ``synth instruct`` run counts, per step, and the report it writes beside the output
(``OUT-stem.report.json``) and summarizes in one line on stderr.

Counts are kept flat as ``STEP.WHAT`` (``titles.duplicate``, ``questions.novelty``, ...), so
they travel in the resume state as they are. They add up: every title parsed is rejected for
one reason or asked for a question; every question is rejected, left over once ``-n`` is
reached (``surplus``), or answered; every answer is rejected or kept. Each rejection is one
line of the rejected file."""

from __future__ import annotations

from collections import Counter

STEPS = ("titles", "questions", "answers")
# Counts that are not rejections (everything else under a step is a reason).
TALLIES = {
    "titles": ("requests", "parsed", "asked"),
    "questions": ("asked", "answered"),
    "answers": ("asked", "kept"),
}
# Rejections that are not a filter: a titles reply without a list, and questions left over.
NOT_FILTERS = ("no_titles", "surplus")


def nested(counts: Counter) -> dict[str, dict[str, int]]:
    """``{"titles": {...}, "questions": {...}, "answers": {...}}`` from the flat counts."""
    out: dict[str, dict[str, int]] = {step: {} for step in STEPS}
    for key, value in sorted(counts.items()):
        step, _, what = key.partition(".")
        out[step][what] = value
    return out


def rejections(counts: Counter) -> dict[str, int]:
    """Rejections per reason, summed over the steps (``novelty``: questions and titles)."""
    total: Counter = Counter()
    for key, value in counts.items():
        step, _, what = key.partition(".")
        if what not in TALLIES[step] and value:
            total[what] += value
    return dict(sorted(total.items(), key=lambda kv: (-kv[1], kv[0])))


def check_sums(counts: Counter) -> list[str]:
    """The identities of the module text that do not hold (an empty list: all do)."""
    steps = nested(counts)
    problems = []
    for step, (total, passed) in (
        ("titles", ("parsed", "asked")),
        ("questions", ("asked", "answered")),
        ("answers", ("asked", "kept")),
    ):
        got = steps[step]
        rejected = sum(v for k, v in got.items() if k not in TALLIES[step])
        rejected -= got.get("no_titles", 0)  # whole replies, not parsed titles
        if got.get(total, 0) != rejected + got.get(passed, 0):
            problems.append(f"{step}: {total} != rejections + {passed} ({got})")
    if steps["titles"].get("asked", 0) != steps["questions"].get("asked", 0):
        problems.append("titles asked != questions asked")
    if steps["questions"].get("answered", 0) != steps["answers"].get("asked", 0):
        problems.append("questions answered != answers asked")
    return problems


def summary_line(result: dict) -> str:
    """One line for stderr: kept of N, rounds, rejections by reason, the files."""
    reasons = ", ".join(f"{k} {v:,}" for k, v in result["rejected_by_reason"].items())
    status = "" if result["complete"] else f" (stopped early: {result['stopped']})"
    return (
        f"synth instruct: kept {result['kept']:,} of {result['n']:,} in {result['rounds']:,} "
        f"rounds{status}; rejected {result['rejected']:,}"
        + (f": {reasons}" if reasons else "")
        + f"; report {result['report']}"
    )
