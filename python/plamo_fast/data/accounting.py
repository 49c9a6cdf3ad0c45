"""No silent empty outputs: the one check every command that reads records and keeps some runs
before it publishes its output.

    check_kept("pack", read=report.examples_read, kept=report.examples_packed,
               dropped=report.dropped, allow_empty=allow_empty)

* A run that keeps nothing (everything skipped as bad, dropped as too long, ...) raises
  :class:`NothingKeptError` with the counts of ``dropped`` as the reason, unless ``allow_empty``
  (the command's ``--allow-empty``). Called inside :func:`plamo_fast.outputs.atomic_output`, the
  error leaves no output behind.
* A run that drops more than 10% of what it read writes one warning line to stderr with the
  counts (it still succeeds).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from plamo_fast.errors import PlamoFastError

# More than this share of the records read dropped gets a warning.
WARN_DROPPED = 0.10


class NothingKeptError(PlamoFastError, ValueError):
    """A run that read records but kept none."""


def _counts(dropped: Mapping[str, int]) -> str:
    items = sorted(((k, v) for k, v in dropped.items() if v), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{reason} {count:,}" for reason, count in items)


def check_kept(
    command: str,
    read: int,
    kept: int,
    dropped: Mapping[str, int],
    allow_empty: bool,
    *,
    hint: str | None = None,
    unit: str = "records",
) -> None:
    """Refuses a run of ``command`` that kept none of the ``read`` records (``dropped``: the
    reasons and counts) unless ``allow_empty``; warns on stderr when more than 10% were dropped.
    ``hint`` is appended to the refusal (what the user probably has to do)."""
    reasons = _counts(dropped)
    if kept == 0 and not allow_empty:
        what = f"read {read:,} {unit} but kept none" if read else f"read no {unit}"
        because = f" (dropped: {reasons})" if reasons else ""
        advice = f"; {hint}" if hint else ""
        raise NothingKeptError(
            f"{command}: {what}{because}{advice}; nothing was written (pass --allow-empty to "
            "write an empty output)"
        )
    total = sum(dropped.values())
    if read and total > WARN_DROPPED * read:
        sys.stderr.write(
            f"plamo-fast {command}: warning: dropped {total:,} of {read:,} {unit} "
            f"({100 * total / read:.1f}%): {reasons}\n"
        )
        sys.stderr.flush()
