"""Where a ``translate`` run keeps its work, so that a killed run restarts where it stopped:
translated records in ``OUT.partial``, rejected ones in ``OUT-stem.rejected.jsonl.partial``,
each line carrying the 0-based ``source_index`` of its input record, written in input order
and flushed at once; the run's settings in ``OUT.settings.json``. A rerun with the same
settings keeps the complete lines (a torn last line is cut off) and goes on with the records
not written yet; other settings are refused (``--overwrite`` starts over). When the run ends,
the rejected file, the report and then the output are published
(:func:`plamo_fast.outputs.publish`) and the settings file removed. Every path is checked like
any output: never an input, a folder or a link."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from plamo_fast.errors import UsageError
from plamo_fast.outputs import check_output, publish, read_appended, write_json_atomic

COMMAND = "translate"


def side_paths(out: Path) -> tuple[Path, Path, Path]:
    """``(rejected file, report, cache)`` beside the output ``out``."""
    out = Path(out)
    return tuple(out.with_name(f"{out.stem}.{kind}") for kind in
                 ("rejected.jsonl", "report.json", "cache.jsonl"))  # fmt: skip


class Store:
    def __init__(self, out: Path, settings: dict, *, inputs: list, overwrite: bool):
        self.out = Path(out)
        self.rejected, self.report, _ = side_paths(self.out)
        self.inputs, self.overwrite = list(inputs), overwrite
        for path in (self.out, self.rejected, self.report):
            check_output(path, command=COMMAND, inputs=self.inputs, overwrite=overwrite,
                         folder=False)  # fmt: skip
        self.partials = {
            "kept": self.out.with_name(self.out.name + ".partial"),
            "rejected": self.rejected.with_name(self.rejected.name + ".partial"),
        }
        self.settings_path = self.out.with_name(self.out.name + ".settings.json")
        for path in (*self.partials.values(), self.settings_path):  # ours to resume or replace
            check_output(path, command=COMMAND, inputs=self.inputs, overwrite=True, folder=False)
        if overwrite:
            for path in (*self.partials.values(), self.settings_path):
                path.unlink(missing_ok=True)
        settings = json.loads(json.dumps(settings))
        self.done: set[int] = set()
        self.kept = 0
        self.reasons: Counter = Counter()
        if self.settings_path.exists():
            before = json.loads(self.settings_path.read_text(encoding="utf-8"))
            if before != settings:
                raise UsageError(
                    f"{self.partials['kept']} was started with other settings ({before}); "
                    "resume with the same ones, or pass --overwrite to start over"
                )
            self._recover()
        else:
            for path in self.partials.values():
                path.unlink(missing_ok=True)
            write_json_atomic(self.settings_path, settings)
        self._files = {k: open(p, "a", encoding="utf-8") for k, p in self.partials.items()}  # noqa: SIM115

    def _recover(self) -> None:
        for kind, path in self.partials.items():
            if not path.exists():
                continue
            needed = ("source_index",) if kind == "kept" else ("source_index", "reason")
            for record in read_appended(path, needed):
                self.done.add(record["source_index"])
                if kind == "kept":
                    self.kept += 1
                else:
                    self.reasons[record["reason"]] += 1

    def write(self, kind: str, record: dict) -> None:
        """One finished record (``kind``: kept or rejected), handed to the OS at once."""
        f = self._files[kind]
        f.write(json.dumps(record, ensure_ascii=False) + "\n")
        f.flush()
        if kind == "kept":
            self.kept += 1
        else:
            self.reasons[record["reason"]] += 1

    def close(self) -> None:
        for f in self._files.values():
            if not f.closed:
                f.flush()
                os.fsync(f.fileno())
                f.close()

    def finish(self, report: dict) -> None:
        """Publishes the rejected file, the report and the output (in this order: an output
        never appears without its side files)."""
        self.close()
        write_json_atomic(self.report.with_name(self.report.name + ".partial"), report)
        for partial, out in (
            (self.partials["rejected"], self.rejected),
            (self.report.with_name(self.report.name + ".partial"), self.report),
            (self.partials["kept"], self.out),
        ):
            publish(partial, out, command=COMMAND, overwrite=self.overwrite, inputs=self.inputs)
        self.settings_path.unlink(missing_ok=True)
