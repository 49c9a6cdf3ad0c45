"""Where a ``synth instruct`` run keeps its work, so that a killed run restarts where it
stopped: the kept records in ``OUT.partial``, the rejected ones in
``OUT-stem.rejected.jsonl.partial``, and after each round ``OUT.state.json`` (written
atomically) with the rounds done, the counts and the committed length of both files. A rerun
with the same settings cuts both files back to those lengths (a round interrupted half-way is
done again, the same way: its requests are seeded by the round) and goes on; other settings are
refused (``--overwrite`` starts over). When the run ends, the rejected file, the report and
then the output are published (:func:`plamo_fast.outputs.publish`) and the state removed.
Every path is checked like any output: never an input, a folder or a link."""

from __future__ import annotations

import json
import os
from pathlib import Path

from plamo_fast.errors import UsageError
from plamo_fast.outputs import check_output, publish, write_json_atomic

COMMAND = "synth instruct"
STATE_FORMAT = 1


def side_paths(out: Path) -> tuple[Path, Path]:
    """``(rejected file, report)`` of the output ``out``: ``OUT-stem.rejected.jsonl`` and
    ``OUT-stem.report.json`` beside it."""
    out = Path(out)
    return out.with_name(f"{out.stem}.rejected.jsonl"), out.with_name(f"{out.stem}.report.json")


def _partial(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


class RoundStore:
    def __init__(self, out: Path, settings: dict, *, inputs: list[Path], overwrite: bool):
        self.out = Path(out)
        self.rejected, self.report = side_paths(self.out)
        self.inputs, self.overwrite = list(inputs), overwrite
        for path in (self.out, self.rejected, self.report):
            check_output(
                path, command=COMMAND, inputs=self.inputs, overwrite=overwrite, folder=False
            )
        self.kept_partial, self.rejected_partial = _partial(self.out), _partial(self.rejected)
        self.state_path = self.out.with_name(self.out.name + ".state.json")
        own = (self.kept_partial, self.rejected_partial, self.state_path)
        for path in own:  # ours to resume or replace, unless an input, a folder or a link
            check_output(path, command=COMMAND, inputs=self.inputs, overwrite=True, folder=False)
        self.settings = json.loads(json.dumps(settings))
        if overwrite:
            for path in own:
                path.unlink(missing_ok=True)
        self.state = self._load_state()
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._files = {}
        for name, path in (("kept", self.kept_partial), ("rejected", self.rejected_partial)):
            path.touch()
            with open(path, "r+b") as f:
                f.truncate(self.state[f"{name}_bytes"])
            self._files[name] = open(path, "ab")  # noqa: SIM115 (closed in close)

    @property
    def resumed(self) -> bool:
        return self.state["rounds"] > 0

    def _load_state(self) -> dict:
        fresh = {"rounds": 0, "stale": 0, "kept": 0, "counts": {}, "kept_bytes": 0,
                 "rejected_bytes": 0}  # fmt: skip
        if not self.state_path.exists():
            return fresh
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
            ok = state.get("format") == STATE_FORMAT and all(k in state for k in fresh)
        except (OSError, ValueError, AttributeError):
            ok = False
        if not ok:
            raise UsageError(
                f"{self.state_path} is not a state this version wrote; pass --overwrite to "
                "start over"
            )
        if state.get("settings") != self.settings:
            changed = sorted(
                k for k in {*self.settings, *state.get("settings", {})}
                if self.settings.get(k) != state.get("settings", {}).get(k)
            )  # fmt: skip
            raise UsageError(
                f"{self.out}: a run with other settings ({', '.join(changed)}) stopped here "
                f"({self.state_path}); resume with the same ones, or pass --overwrite to "
                "start over"
            )
        return {k: state[k] for k in fresh}

    def kept_records(self) -> list[dict]:
        """The records kept by the rounds done, in order."""
        with open(self.kept_partial, "rb") as f:
            data = f.read(self.state["kept_bytes"])
        return [json.loads(line) for line in data.splitlines() if line.strip()]

    def commit(self, records: list[dict], rejected: list[dict], **state) -> None:
        """One round's kept and rejected records, then the state (rounds, kept, stale,
        counts) that makes them part of the run."""
        for name, lines in (("kept", records), ("rejected", rejected)):
            f = self._files[name]
            f.write(b"".join(_line(r) for r in lines))
            f.flush()
            os.fsync(f.fileno())
            self.state[f"{name}_bytes"] = f.tell()
        self.state.update(state)
        write_json_atomic(
            self.state_path, {"format": STATE_FORMAT, "settings": self.settings, **self.state}
        )

    def finish(self, report: dict) -> None:
        """Publishes the rejected file, the report and the output, in that order (the output
        last: its presence says the run is over), and removes the state."""
        self.close()
        command, overwrite, inputs = COMMAND, self.overwrite, self.inputs
        publish(self.rejected_partial, self.rejected, command=command, overwrite=overwrite,
                inputs=inputs)  # fmt: skip
        check_output(self.report, command=command, inputs=inputs, overwrite=overwrite,
                     folder=False)  # fmt: skip
        write_json_atomic(self.report, report)
        publish(self.kept_partial, self.out, command=command, overwrite=overwrite, inputs=inputs)
        self.state_path.unlink(missing_ok=True)

    def close(self) -> None:
        for f in self._files.values():
            if not f.closed:
                f.close()


def _line(record: dict) -> bytes:
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
