"""The report of a ``translate`` run: written as JSON beside the output
(``OUT-stem.report.json``) and summed up in one line on stderr. ``read`` = ``kept`` +
``rejected`` (``rejected`` counts ``bad_record`` too, with ``--skip-bad``); ``reasons`` holds
each rejection reason's count over the whole run, resumed parts included; ``this_run`` what
this process did: ``records`` written, ``already_done`` (by an earlier, interrupted run),
``chunks`` that needed the model, ``requests`` sent to it and ``cached`` answers taken from the
cache or from a repeat in the same batch (back-translations included in both)."""

from __future__ import annotations

from collections import Counter


def build(*, read: int, kept: int, reasons: Counter, this_run: dict, settings: dict,
          paths: dict) -> dict:  # fmt: skip
    rejected = sum(reasons.values())
    return {
        "read": read,
        "kept": kept,
        "rejected": rejected,
        "reasons": dict(sorted(reasons.items())),
        "this_run": this_run,
        "settings": settings,
        **{k: str(v) for k, v in paths.items()},
    }


def line(report: dict) -> str:
    """The one-line summary: ``translate: kept K of N; rejected: reason count, ...``."""
    reasons = ", ".join(f"{k} {v}" for k, v in report["reasons"].items()) or "none"
    run = report["this_run"]
    return (
        f"plamo-fast translate: kept {report['kept']:,} of {report['read']:,} records; "
        f"rejected: {reasons}; {run['requests']:,} requests, {run['cached']:,} answers from "
        f"the cache; report {report['report']}"
    )
