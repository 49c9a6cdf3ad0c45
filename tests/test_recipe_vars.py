"""Recipe ``vars`` (``${vars.NAME}``, ``--set NAME=VALUE`` remembered by the run folder) and
steps left out by their ``if``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from plamo_fast.cli import main
from plamo_fast.recipe.runner import RUN, SKIP, plan, run
from plamo_fast.recipe.spec import VARS_FILE, RecipeError, load_recipe, remember_settings

RECIPE = {
    "name": "with-vars",
    "vars": {"problems": 40, "lang": "en", "extra": ""},
    "steps": [
        {"name": "math", "kind": "synth_math",
         "params": {"n": "${vars.problems}", "lang": "${vars.lang}", "mix": "arithmetic.add=1"}},
        {"name": "clean", "kind": "dedup", "params": {"inputs": ["${steps.math.output}"]}},
        {"name": "more", "kind": "synth_math", "if": "${vars.extra}",
         "params": {"n": 10, "seed": 5, "lang": "${vars.lang}"}},
    ],
}  # fmt: skip


def write(path: Path, recipe: dict = RECIPE) -> Path:
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def test_vars_have_defaults_types_and_a_false_if_leaves_a_step_out(tmp_path: Path):
    loaded = load_recipe(write(tmp_path / "r.yaml"), tmp_path / "run")
    assert [s.name for s in loaded.steps] == ["math", "clean"] and loaded.off == ["more"]
    assert loaded.step("math").params.n == 40  # a whole-value reference keeps the int
    changed = load_recipe(tmp_path / "r.yaml", tmp_path / "run", {"problems": "50", "extra": "y"})
    assert changed.step("math").params.n == 50 and changed.off == []
    assert changed.step("more").params.lang == "en"
    for off in ("", "no", "false", "0", "off"):
        assert load_recipe(tmp_path / "r.yaml", tmp_path / "run", {"extra": off}).off == ["more"]


def test_bad_vars_and_settings_are_listed_at_once(tmp_path: Path):
    recipe = json.loads(json.dumps(RECIPE))
    recipe["steps"][1]["params"]["inputs"] = ["${vars.nowhere}"]
    with pytest.raises(RecipeError) as caught:
        load_recipe(write(tmp_path / "r.yaml", recipe), tmp_path / "run",
                    {"problems": "many", "unknown": "1"})  # fmt: skip
    text = str(caught.value)
    assert "--set problems=many: expected an integer" in text
    assert "--set unknown: the recipe declares no such var (vars: problems, lang, extra)" in text
    assert "${vars.nowhere} is not declared" in text


def test_a_step_that_needs_a_left_out_step_is_refused_naming_it(tmp_path: Path):
    recipe = json.loads(json.dumps(RECIPE))
    recipe["steps"].append(
        {"name": "after", "kind": "dedup", "params": {"inputs": ["${steps.more.output}"]}}
    )
    with pytest.raises(RecipeError, match=r"steps\.after\.params: .*step more is left out"):
        load_recipe(write(tmp_path / "r.yaml", recipe), tmp_path / "run")
    load_recipe(tmp_path / "r.yaml", tmp_path / "run", {"extra": "1"})  # on: fine


def test_the_run_folder_remembers_its_settings_and_a_change_reruns_downstream(tmp_path: Path):
    path = write(tmp_path / "r.yaml")
    first = load_recipe(path, tmp_path / "run", {"problems": "30"})
    remember_settings(first, {"problems": "30"})
    run(first, plan(first), progress=False, echo=lambda s: None)
    assert json.loads((tmp_path / "run" / VARS_FILE).read_text()) == {"problems": "30"}
    again = load_recipe(path, tmp_path / "run")  # no --set: the remembered one
    assert again.step("math").params.n == 30
    assert [d.action for d in plan(again)] == [SKIP, SKIP]
    changed = load_recipe(path, tmp_path / "run", {"problems": "31"})
    assert [d.action for d in plan(changed)] == [RUN, RUN]


def test_cli_set_is_remembered_by_plan_and_status(tmp_path: Path, capsys):
    path = write(tmp_path / "r.yaml")
    run_dir = tmp_path / "run"
    code = main(["recipe", "run", str(path), "-o", str(run_dir), "--set", "extra=yes", "-q"])
    assert code == 0
    capsys.readouterr()
    assert main(["recipe", "plan", str(path), "-o", str(run_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [["skip", "math"], ["skip", "clean"],
                                                    ["skip", "more"]]  # fmt: skip
    assert main(["recipe", "plan", str(path), "-o", str(run_dir), "--set", "bad"]) == 1
    assert "expected NAME=VALUE" in capsys.readouterr().err


def test_settings_are_never_written_into_a_folder_of_something_else(tmp_path: Path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    loaded = load_recipe(write(tmp_path / "r.yaml"), folder, {"extra": "1"})
    with pytest.raises(Exception, match="not an output of plamo-fast"):
        remember_settings(loaded, {"extra": "1"})
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
