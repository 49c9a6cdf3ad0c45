"""``plamo-fast demo``: the tiny-cpu recipe. Without the [train] extra it runs the data steps,
exits 0 and names what to install; in the same place again it redoes nothing. (The full
recipe end to end is tests/test_recipe_tiny.py, shrunk; the demo's own size is measured by
hand, see the README.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plamo_fast.cli import main
from plamo_fast.recipe.record import RECORD

DATA_STEPS = ["math_data", "math_dedup", "general_dedup", "dpo_prompts", "base"]


@pytest.fixture
def without_train(monkeypatch):
    """As with the base install: torch, transformers and accelerate missing."""
    import plamo_fast.recipe.steps as steps

    monkeypatch.setattr(steps, "torch_missing", lambda: "torch, transformers, accelerate")


def test_demo_without_train_extra_runs_the_data_steps_and_names_the_install(
    tmp_path: Path, capsys, without_train
):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "-q"]) == 0
    captured = capsys.readouterr()
    assert "pip install 'plamo-fast[train]'" in captured.err
    assert f"the report: {out / 'report.md'}" in captured.out
    done = sorted(p.parent.name for p in out.glob(f"*/{RECORD}"))
    assert done == sorted(DATA_STEPS)
    assert not (out / "sft_math").exists()
    records = {n: json.loads((out / n / RECORD).read_text()) for n in DATA_STEPS}
    assert records["math_data"]["metrics"]["test"] > 0
    assert (out / "base" / "model" / "tokenizer.json").is_file()
    report = (out / "report.md").read_text()
    assert "| sft_math | sft | not run |" in report
    # Again in the same place: nothing is redone.
    assert main(["demo", "-o", str(out), "-q"]) == 0
    again = {n: json.loads((out / n / RECORD).read_text()) for n in DATA_STEPS}
    assert again == records
    assert "judged set left out: no judge" in capsys.readouterr().out
    assert "judged_merged" not in report


def test_demo_with_a_judge_plans_the_judged_set_and_remembers_the_judge(
    tmp_path: Path, capsys, without_train
):
    out = tmp_path / "demo"
    url = "http://127.0.0.1:9/v1"
    assert main(["demo", "-o", str(out), "-q", "--judge", "judge-7b", "--judge-base-url", url]) == 0
    assert json.loads((out / "recipe.vars.json").read_text()) == {
        "judge": "judge-7b", "judge_base_url": url
    }  # fmt: skip
    report = (out / "report.md").read_text()
    for name in ["judged_sft_general", "judged_dpo_onpolicy", "judged_dpo_spin", "judged_merged"]:
        assert f"| {name} | eval_mt_bench | not run |" in report
    assert "judged set left out" not in capsys.readouterr().out
    # The run folder remembers the judge: `recipe plan` there plans the judged steps too.
    assert main(["recipe", "plan", "tiny-cpu", "-o", str(out)]) == 0
    assert "judged_merged" in capsys.readouterr().out


def test_demo_refuses_a_folder_that_is_not_its_own(tmp_path: Path, capsys, without_train):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["demo", "-o", str(out), "-q"]) == 1
    assert "not an output of plamo-fast" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


HIDE_TRAIN = """
import importlib.abc, sys
from importlib.machinery import PathFinder
class Hide(importlib.abc.MetaPathFinder):
    # The path finder, blind to the [train] packages: as if they were not installed.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers", "accelerate"):
            return None
        return PathFinder.find_spec(name, path, target)
sys.meta_path = [Hide() if f is PathFinder else f for f in sys.meta_path]
from plamo_fast.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_demo_in_a_process_where_torch_cannot_be_imported(tmp_path: Path):
    """The README's first command with the base install: no torch anywhere on the path."""
    import subprocess
    import sys

    out = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-c", HIDE_TRAIN, "demo", "-o", str(out), "-q"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "pip install 'plamo-fast[train]'" in done.stderr
    assert sorted(p.parent.name for p in out.glob(f"*/{RECORD}")) == sorted(DATA_STEPS)
