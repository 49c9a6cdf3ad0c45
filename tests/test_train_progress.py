"""Progress of sft/dpo in a job log: when stderr is not a terminal, one line per logged step
(``log_every``) with step/total, loss, lr, tokens/s and ETA; on a terminal the progress bar."""

from __future__ import annotations

import re
import sys

import pytest
from train_fixtures import DPO_RECORDS, SFT_RECORDS, packed, tiny_model, write_config

from plamo_fast.cli import main
from plamo_fast.train.metrics import ProgressLines

LINE = re.compile(
    r"(?P<label>\w+ \w+): step (?P<step>\d+)/(?P<total>\d+) loss (?P<loss>\d+\.\d{4}) "
    r"lr (?P<lr>\d\.\d\de[-+]\d\d) tokens/s (?P<tps>[\d,]+) "
    r"elapsed \d+:\d\d:\d\d eta (\d+:\d\d:\d\d)$"
)


def stage_config(tmp_path, kind: str, max_steps: int, log_every: int) -> tuple:
    model = tiny_model(tmp_path / "model")
    records = SFT_RECORDS if kind == "sft" else DPO_RECORDS
    data = packed(tmp_path / "packed", model, records, kind)
    stage = {
        "name": "tiny",
        "model": str(model),
        "output": str(tmp_path / "out"),
        "data": {"packed": [str(data)]},
        "optim": {"lr": 1e-3, "schedule": "constant"},
        "grad_accum": 1,
        "max_steps": max_steps,
        "log_every": log_every,
    }
    config = {"kind": kind, "plot": False, "stages": [stage]}
    return write_config(tmp_path / "c.yaml", config), tmp_path / "out"


@pytest.mark.parametrize("kind, max_steps, log_every", [("sft", 5, 2), ("dpo", 2, 1)])
def test_a_job_log_gets_a_line_per_logged_step(tmp_path, capsys, kind, max_steps, log_every):
    config, out = stage_config(tmp_path, kind, max_steps, log_every)
    capsys.readouterr()
    assert not sys.stderr.isatty()  # captured, as in a cluster job's log
    assert main([kind, str(config)]) == 0
    err = capsys.readouterr().err.splitlines()
    progress = [LINE.match(x) for x in err if ": step " in x]
    assert all(progress), err
    logged = [s for s in range(1, max_steps + 1) if s % log_every == 0 or s == max_steps]
    assert [int(m["step"]) for m in progress] == logged
    assert {m["label"] for m in progress} == {f"{kind} tiny"}
    assert {int(m["total"]) for m in progress} == {max_steps}
    assert all(int(m["tps"].replace(",", "")) > 0 for m in progress)
    assert progress[-1].group(0).endswith("eta 0:00:00")
    # The lines show what metrics.jsonl records at the same steps.
    import json

    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == logged
    for m, r in zip(progress, records, strict=True):
        assert m["loss"] == f"{r['loss']:.4f}" and m["lr"] == f"{r['lr']:.2e}"


def test_a_terminal_keeps_the_bar_and_quiet_prints_nothing(tmp_path, capsys, monkeypatch):
    config, _ = stage_config(tmp_path, "sft", 2, 1)
    capsys.readouterr()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(["sft", str(config)]) == 0
    assert ": step " not in capsys.readouterr().err
    monkeypatch.undo()
    assert main(["sft", str(config), "stages.0.output=" + str(tmp_path / "out2"), "-q"]) == 0
    assert ": step " not in capsys.readouterr().err


def test_eta_assumes_the_pace_since_the_restart(capsys):
    now = [100.0]
    lines = ProgressLines("sft math", total=100, start=40, enabled=True, clock=lambda: now[0])
    now[0] += 30.0  # 10 steps after a resume at step 40: 3 s a step, 50 steps left
    lines.write({"step": 50, "loss": 1.23456, "lr": 2e-5, "tokens_per_s": 12345.6})
    assert capsys.readouterr().err == (
        "sft math: step 50/100 loss 1.2346 lr 2.00e-05 tokens/s 12,346 "
        "elapsed 0:00:30 eta 0:02:30\n"
    )
    ProgressLines("sft math", 100, 0, enabled=False).write({"step": 1})  # another process
    assert capsys.readouterr().err == ""
