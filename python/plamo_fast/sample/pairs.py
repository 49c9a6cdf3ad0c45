"""``plamo-fast pairs``: best-vs-worst preference pairs from scored candidates, and SPIN pairs.

Output rows are TRL's conversational preference format, which ``plamo-fast pack --kind dpo``
reads: ``prompt`` (messages), ``chosen`` and ``rejected`` (one assistant message each), plus
``score_chosen``, ``score_rejected``, ``margin``, ``min_margin`` and ``scorer``.

A pair keeps the fields of the record it comes from (``id``, ``source``, ``license``, ...; SPIN:
of the SFT record) next to these, as ``sample`` does; only what sample and score add to a record
(its candidates, sampling settings, prompt messages) is left out. ``prompt`` is the record's own
prompt as messages; an input field that a pair would overwrite with something else (``chosen``,
``rejected``, ...) is refused, naming FILE:LINE.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

from plamo_fast.data.accounting import check_kept
from plamo_fast.data.conversation import BadRecordError, sft_conversation
from plamo_fast.data.curation_io import iter_input, where
from plamo_fast.outputs import atomic_output, check_output
from plamo_fast.sample.records import prompt_messages, read_jsonl


def best_and_worst(scores: list[float | None]) -> tuple[int, int] | None:
    """Indices of the best and worst scored candidates (ties: the lowest index), or None when
    fewer than two are scored or all scores tie."""
    scored = [(s, i) for i, s in enumerate(scores) if s is not None]
    if len(scored) < 2:
        return None
    best = max(scored, key=lambda x: (x[0], -x[1]))
    worst = min(scored, key=lambda x: (x[0], x[1]))
    if best[0] == worst[0]:
        return None
    return best[1], worst[1]


def _report_writer(report_path: Path | None, inputs: list, overwrite: bool):
    """Checks the report's path before any work; returns the function that writes it."""
    if report_path is None:
        return lambda report: None
    check_output(report_path, command="pairs", inputs=inputs, overwrite=overwrite, folder=False)

    def write(report: dict) -> None:
        with atomic_output(
            report_path, command="pairs", inputs=inputs, overwrite=overwrite, folder=False
        ) as partial:
            text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
            partial.write_text(text, encoding="utf-8")

    return write


# What sample and score add to a record: not the record's own, not carried into its pair.
PIPELINE_FIELDS = ("prompt_messages", "candidates", "sampling", "scorer", "prompt_index")
# What a pair derives from its record rather than sets: the same prompt, reshaped as messages.
DERIVED_FIELDS = ("prompt",)


def own_fields(record: dict, pair: dict, where: str) -> dict:
    """``pair`` after the fields of ``record`` it came from (less :data:`PIPELINE_FIELDS`);
    a field of the record that the pair sets to something else raises :class:`BadRecordError`
    naming ``where``."""
    own = {k: v for k, v in record.items() if k not in PIPELINE_FIELDS}
    clash = [k for k in pair if k in own and k not in DERIVED_FIELDS]
    if clash:
        raise BadRecordError(
            f"{where}: field {clash[0]!r} is one pairs writes; rename it in the input "
            "(a pair keeps the record's own fields)"
        )
    return {**own, **pair}


def _assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def make_pairs(
    scored: Path,
    output: Path,
    *,
    min_margin: float = 0.0,
    drop_truncated: bool = False,
    report_path: Path | None = None,
    overwrite: bool = False,
    allow_empty: bool = False,
) -> dict:
    """Pairs from ``scored`` (the output of score). No pair at all is an error (nothing is
    written) unless ``allow_empty``; see :func:`plamo_fast.data.accounting.check_kept`."""
    write_report = _report_writer(report_path, [scored, output], overwrite)
    drops: Counter = Counter()
    histogram: Counter = Counter()
    prompts_in = pairs_out = fewer_than_n = 0
    scorer = None
    with (
        atomic_output(
            output, command="pairs", inputs=[scored], overwrite=overwrite, folder=False
        ) as partial,
        open(partial, "w", encoding="utf-8") as out,
    ):
        for number, record in read_jsonl(Path(scored)):
            prompts_in += 1
            candidates = record.get("candidates")
            if not isinstance(candidates, list):
                raise BadRecordError(f"{scored}:{number}: no 'candidates' (run sample first)")
            scorer = record.get("scorer", scorer)
            n = (record.get("sampling") or {}).get("n", len(candidates))
            scores = []
            for c in candidates:
                s = c.get("score")
                if not isinstance(s, int | float) or isinstance(s, bool) or not math.isfinite(s):
                    s = None  # missing, or NaN/inf: never a preference
                if drop_truncated and c.get("finish_reason") == "length":
                    s = None
                scores.append(s)
                if isinstance(s, int | float):
                    histogram[round(float(s), 1)] += 1
            if sum(s is not None for s in scores) < n:
                fewer_than_n += 1
            if sum(s is not None for s in scores) < 2:
                drops["fewer_than_2_scored"] += 1
                continue
            picked = best_and_worst(scores)
            if picked is None:
                drops["all_scores_tie"] += 1
                continue
            b, w = picked
            if candidates[b]["text"].strip() == candidates[w]["text"].strip():
                drops["chosen_equals_rejected"] += 1
                continue
            margin = scores[b] - scores[w]
            if margin < min_margin:
                drops["below_min_margin"] += 1
                continue
            messages = record.get("prompt_messages") or prompt_messages(record)
            pair = {
                "prompt": messages,
                "chosen": _assistant(candidates[b]["text"]),
                "rejected": _assistant(candidates[w]["text"]),
                "score_chosen": scores[b],
                "score_rejected": scores[w],
                "margin": margin,
                "min_margin": min_margin,
                "scorer": scorer,
                "prompt_index": record.get("prompt_index"),
            }
            pair = own_fields(record, pair, f"{scored}:{number}")
            out.write(json.dumps(pair, ensure_ascii=False) + "\n")
            pairs_out += 1
        hint = (
            "the candidates have no scores: run `plamo-fast score` on them first"
            if drops["fewer_than_2_scored"] == prompts_in > 0
            else None
        )
        check_kept("pairs", prompts_in, pairs_out, drops, allow_empty, hint=hint, unit="prompts")
    report = {
        "prompts_in": prompts_in,
        "pairs_out": pairs_out,
        "dropped": dict(drops),
        "prompts_with_fewer_than_n_scored": fewer_than_n,
        "min_margin": min_margin,
        "score_histogram": {str(k): v for k, v in sorted(histogram.items())},
        "scorer": scorer,
    }
    write_report(report)
    return report


def spin_pairs(
    sft_data: Path,
    samples: Path,
    output: Path,
    *,
    report_path: Path | None = None,
    overwrite: bool = False,
    allow_empty: bool = False,
) -> dict:
    """SPIN: for each SFT record (any conversation shape of :mod:`plamo_fast.data.conversation`),
    the prompt is its turns before its last trained answer, chosen is that answer, rejected the
    model's candidate for the same prompt (its first candidate that differs from the
    reference). Samples are matched to SFT records by the prompt messages. No pair at all is an
    error unless ``allow_empty`` (:func:`plamo_fast.data.accounting.check_kept`)."""
    write_report = _report_writer(report_path, [sft_data, samples, output], overwrite)
    by_prompt: dict[str, list[dict]] = {}
    for _, record in read_jsonl(Path(samples)):
        key = json.dumps(record.get("prompt_messages") or prompt_messages(record), sort_keys=True)
        by_prompt.setdefault(key, record.get("candidates") or [])
    drops: Counter = Counter()
    records_in = pairs_out = 0
    with (
        atomic_output(
            output, command="pairs", inputs=[sft_data, samples], overwrite=overwrite, folder=False
        ) as partial,
        open(partial, "w", encoding="utf-8") as out,
    ):
        for row in iter_input(Path(sft_data)):
            if row.error is not None:
                raise BadRecordError(f"{where(Path(sft_data), row)}: {row.error}")
            records_in += 1
            try:
                conversation = sft_conversation(row.record, last_turn_only=True)
            except BadRecordError as exc:
                raise BadRecordError(f"{where(Path(sft_data), row)}: {exc}") from None
            if not conversation.trained:
                drops["no_assistant_turn"] += 1
                continue
            last = conversation.trained[-1]
            prompt = [dict(m) for m in conversation.messages[:last]]
            reference = conversation.messages[last]["content"]
            candidates = by_prompt.get(json.dumps(prompt, sort_keys=True))
            if not candidates:
                drops["no_sample_for_prompt"] += 1
                continue
            own = next(
                (c["text"] for c in candidates if c["text"].strip() != reference.strip()), None
            )
            if own is None:
                drops["samples_equal_reference"] += 1
                continue
            pair = {
                "prompt": prompt,
                "chosen": _assistant(reference),
                "rejected": _assistant(own),
                "scorer": "spin",
            }
            pair = own_fields(row.record, pair, where(Path(sft_data), row))
            out.write(json.dumps(pair, ensure_ascii=False) + "\n")
            pairs_out += 1
        check_kept("pairs", records_in, pairs_out, drops, allow_empty)
    report = {"records_in": records_in, "pairs_out": pairs_out, "dropped": dict(drops)}
    write_report(report)
    return report
