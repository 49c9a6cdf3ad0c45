"""The recipe runner on the steps that need no torch (synth math, dedup, the tiny model, pack):
refusal of bad recipes with every problem listed, repeat blocks, the plan and its reasons,
skipping finished steps, rerunning exactly what a change reaches, --from/--until/--only/--force."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from plamo_fast.cli import main
from plamo_fast.recipe.record import RECORD, STARTED
from plamo_fast.recipe.runner import RUN, SKIP, plan, run
from plamo_fast.recipe.spec import RecipeError, load_recipe

DATA_RECIPE = {
    "name": "data-only",
    "steps": [
        {"name": "math", "kind": "synth_math",
         "params": {"n": 60, "lang": "en", "mix": "arithmetic.add=1", "holdout": 0.2}},
        {"name": "clean", "kind": "dedup", "params": {"inputs": ["${steps.math.output}"]}},
        {"name": "other", "kind": "synth_math", "params": {"n": 10, "seed": 3, "lang": "en"}},
        {"name": "base", "kind": "tiny_model",
         "params": {"corpus": ["${steps.math.output}", "${steps.other.output}"], "layers": 1,
                    "hidden": 16, "intermediate": 32, "heads": 2, "kv_heads": 1}},
        {"name": "packed", "kind": "pack",
         "params": {"inputs": ["${steps.clean.output}"], "tokenizer": "${steps.base.output}",
                    "max_length": 512}},
    ],
}  # fmt: skip


def write_recipe(path: Path, recipe: dict) -> Path:
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def load(tmp_path: Path, recipe: dict = DATA_RECIPE):
    return load_recipe(write_recipe(tmp_path / "recipe.yaml", recipe), tmp_path / "run")


def run_all(recipe, **selection) -> list[str]:
    """Runs the recipe; returns the names of the steps that ran."""
    ran = run(recipe, plan(recipe, **selection), progress=False, echo=lambda s: None)
    return [d.step.name for d in ran]


def test_bad_recipe_lists_every_problem_at_once(tmp_path: Path):
    bad = {
        "name": "bad",
        "steps": [
            {"name": "a", "kind": "synth_mathh", "params": {"n": 5}},
            {"name": "b", "kind": "dedup", "params": {"inputs": ["${steps.nowhere.output}"]}},
            {"name": "c", "kind": "dedup", "params": {"inputs": ["${steps.d.output}"]}},
            {"name": "d", "kind": "dedup", "params": {"inputs": ["${steps.c.output}"]}},
            {"name": "e", "kind": "synth_math", "params": {"n": "many", "holdout": 2.0}},
            {"name": "f", "kind": "dedup", "params": {"inputs": ["${steps.e.model}"],
                                                     "colour": "red"}},
            {"name": "g", "kind": "sft", "params": {"optim": {"lr": "fast"}, "epochs": 1}},
        ],
    }  # fmt: skip
    with pytest.raises(RecipeError) as caught:
        load(tmp_path, bad)
    text = str(caught.value)
    for expected in [
        "steps.a.kind: unknown step kind 'synth_mathh'",
        "${steps.nowhere.output} names no step",
        "steps: a cycle: c -> d -> c",
        "steps.e.params.n: expected int, got 'many'",
        "steps.e.params.holdout: a fraction in [0, 1)",
        "a synth_math step has no output 'model'",
        "steps.f.params.colour: unknown key",
        "steps.g.params.optim.lr: expected float, got 'fast'",
        "steps.g.params.model: the first stage needs a starting model",
    ]:
        assert expected in text, expected
    assert "9 problem(s)" in text or text.count("\n  - ") >= 9


def test_refused_recipe_runs_nothing(tmp_path: Path, capsys):
    recipe = {**DATA_RECIPE, "steps": [*DATA_RECIPE["steps"], {"name": "x", "kind": "nope"}]}
    path = write_recipe(tmp_path / "r.yaml", recipe)
    assert main(["recipe", "run", str(path), "-o", str(tmp_path / "run"), "-q"]) == 1
    assert "unknown step kind 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_repeat_block_unrolls_rounds_chained_by_carry(tmp_path: Path):
    recipe = {
        "steps": [
            {"name": "math", "kind": "synth_math", "params": {"n": 20}},
            {"repeat": "round", "times": 3, "start": "${steps.math.output}", "carry": "clean",
             "steps": [
                 {"name": "clean", "kind": "dedup", "params": {"inputs": ["${round.start}"],
                                                               "seed": "${round.index}"}},
                 {"name": "again", "kind": "dedup",
                  "params": {"inputs": ["${steps.clean.output}"]}},
             ]},
        ]
    }  # fmt: skip
    loaded = load(tmp_path, recipe)
    names = [s.name for s in loaded.steps]
    assert names == ["math", "round1_clean", "round1_again", "round2_clean", "round2_again",
                     "round3_clean", "round3_again"]  # fmt: skip
    round3 = loaded.step("round3_clean")
    assert round3.deps == ["round2_clean"]
    assert round3.params.inputs == [str(tmp_path / "run" / "round2_clean" / "data.jsonl")]
    assert round3.params.seed == 3
    assert loaded.step("round2_again").deps == ["round2_clean"]
    assert loaded.downstream("round2_clean") == ["round2_again", "round3_clean", "round3_again"]


def test_run_records_and_a_second_run_skips_everything(tmp_path: Path):
    loaded = load(tmp_path)
    assert run_all(loaded) == ["math", "clean", "other", "base", "packed"]
    record = json.loads((tmp_path / "run" / "clean" / RECORD).read_text())
    assert record["fingerprint"] and record["plamo_fast_version"]
    math = tmp_path / "run" / "math" / "data.jsonl"
    digest = hashlib.sha256(math.read_bytes()).hexdigest()
    assert record["inputs"] == {"${run_dir}/math/data.jsonl": digest}
    assert (
        record["outputs"]["output"]["records"]
        == 60 - json.loads((tmp_path / "run" / "math" / RECORD).read_text())["metrics"]["test"]
    )
    assert "records_kept" in record["metrics"]
    assert not (tmp_path / "run" / "clean" / STARTED).exists()
    assert not list((tmp_path / "run").glob("*/.*tmp*"))
    again = load(tmp_path)
    assert [d.action for d in plan(again)] == [SKIP] * 5
    assert run_all(again) == []


def test_changed_parameter_reruns_exactly_the_downstream_steps(tmp_path: Path):
    run_all(load(tmp_path))
    changed = json.loads(json.dumps(DATA_RECIPE))
    changed["steps"][1]["params"]["near"] = True
    loaded = load(tmp_path, changed)
    decisions = {d.step.name: d for d in plan(loaded)}
    assert decisions["clean"].reasons == ["parameters changed: near: false -> true"]
    assert decisions["packed"].reasons == ["upstream clean reruns"]
    assert run_all(loaded) == ["clean", "packed"]
    assert run_all(load(tmp_path, changed)) == []


def test_changed_input_file_and_damaged_output_rerun_their_steps(tmp_path: Path):
    general = tmp_path / "general.jsonl"
    general.write_text(json.dumps({"prompt": "hello", "response": "hi"}) + "\n")
    recipe = json.loads(json.dumps(DATA_RECIPE))
    recipe["steps"].append({"name": "g", "kind": "dedup", "params": {"inputs": [str(general)]}})
    run_all(load(tmp_path, recipe))
    general.write_text(json.dumps({"prompt": "bye", "response": "see you"}) + "\n")
    decisions = {d.step.name: d for d in plan(load(tmp_path, recipe))}
    assert decisions["g"].reasons == ["input ${recipe_dir}/general.jsonl changed"]
    assert [n for n, d in decisions.items() if d.action == RUN] == ["g"]
    # An output edited (or deleted) after it was recorded is made again, and its downstream.
    with open(tmp_path / "run" / "clean" / "data.jsonl", "a") as f:
        f.write("{}\n")
    decisions = {d.step.name: d for d in plan(load(tmp_path, recipe))}
    assert decisions["clean"].reasons == ["output output (data.jsonl) changed since it was made"]
    assert run_all(load(tmp_path, recipe)) == ["clean", "packed", "g"]


def test_from_until_only_force(tmp_path: Path):
    loaded = load(tmp_path)
    assert run_all(loaded, until="clean") == ["math", "clean"]
    # base needs math (done) and other (not done, not selected): refused before anything runs.
    with pytest.raises(Exception, match="needs other, which is not done"):
        run_all(load(tmp_path), only=("base",))
    assert run_all(load(tmp_path), start="other") == ["other", "base", "packed"]
    assert run_all(load(tmp_path), force=("base",)) == ["base", "packed"]
    decisions = {d.step.name: d for d in plan(load(tmp_path), force=("clean",), only=("clean",))}
    assert decisions["clean"].action == RUN
    assert decisions["packed"].action == "outside"
    with pytest.raises(Exception, match="no step named 'nope'"):
        plan(load(tmp_path), start="nope")


def test_interrupted_step_resumes_only_with_the_same_fingerprint(tmp_path: Path):
    run_all(load(tmp_path))
    folder = tmp_path / "run" / "clean"
    (folder / RECORD).unlink()
    (folder / STARTED).write_text(json.dumps({"fingerprint": "another"}))
    (folder / "leftover.txt").write_text("from a killed run with other settings")
    decisions = {d.step.name: d for d in plan(load(tmp_path))}
    assert decisions["clean"].reasons == [
        "not run yet",
    ]
    assert run_all(load(tmp_path)) == ["clean", "packed"]
    assert not (folder / "leftover.txt").exists()


def test_cli_plan_status_show_and_refused_run_folder(tmp_path: Path, capsys):
    path = write_recipe(tmp_path / "r.yaml", DATA_RECIPE)
    out = tmp_path / "run"
    assert main(["recipe", "plan", str(path), "-o", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["run", "math", "synth_math", "not"]
    assert main(["recipe", "run", str(path), "-o", str(out), "-q"]) == 0
    captured = capsys.readouterr()
    assert "| packed | pack | done |" in captured.out
    assert (out / "report.md").is_file()
    assert "## clean (dedup)" in (out / "report.md").read_text()
    assert main(["recipe", "status", str(path), "-o", str(out)]) == 0
    assert all(line.startswith("done") for line in capsys.readouterr().out.splitlines())
    assert main(["recipe", "show", "tiny-cpu"]) == 0
    assert "kind: synth_math" in capsys.readouterr().out
    # A folder of the user's is not a run folder.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    assert main(["recipe", "run", str(path), "-o", str(mine), "-q"]) == 1
    assert "not an output of plamo-fast" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("name", ["tiny-cpu", "8b-single-node", "plamo-100b"])
def test_shipped_recipes_resolve_type_check_and_plan(tmp_path: Path, name: str, capsys):
    from plamo_fast.recipe import find_recipe, shipped

    assert name in shipped()
    loaded = load_recipe(find_recipe(name), tmp_path / "run")
    assert all(d.action == RUN for d in plan(loaded))
    merged = loaded.step("merged")
    assert merged.kind.name == "merge" and len(merged.params.models) == 2
    assert all(Path(m).parent.parent == tmp_path / "run" for m in merged.params.models)
    assert main(["recipe", "plan", name, "-o", str(tmp_path / "run")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(loaded.steps)
    assert not (tmp_path / "run").exists()  # planning writes nothing


def test_100b_recipe_has_the_plamo_shape(tmp_path: Path):
    from plamo_fast.recipe import find_recipe

    loaded = load_recipe(find_recipe("plamo-100b"), tmp_path / "run")
    kinds = [s.kind.name for s in loaded.steps]
    assert kinds.count("sft") == 2 and kinds.count("dpo") == 3
    assert {"eval_jaster", "eval_mt_bench", "eval_rakuda"} <= set(kinds)
    dpo2 = loaded.step("dpo2_train").params.config.stages[0]
    assert dpo2.model == str(tmp_path / "run" / "dpo1_train" / "model")
    assert dpo2.reference_model == str(tmp_path / "run" / "sft_general" / "model")
    assert loaded.step("sft_math").launcher.machines == 8


def test_training_steps_with_several_processes_use_accelerate_launch(tmp_path: Path):
    from plamo_fast.recipe.steps import accelerate_command

    recipe = {
        "launcher": {"processes": 4, "machines": 2, "accelerate_config": "acc.yaml"},
        "steps": [
            {"name": "t", "kind": "sft", "launcher": {"machines": 1},
             "params": {"model": "m", "data": {"packed": ["p"]}}},
        ],
    }  # fmt: skip
    step = load(tmp_path, recipe).step("t")
    assert (step.launcher.processes, step.launcher.machines) == (4, 1)
    command = accelerate_command(step.folder / "train.yaml", "sft", step.launcher)
    assert command[1:] == [
        "-m", "accelerate.commands.launch", "--config_file", "acc.yaml", "--num_processes", "4",
        "-m", "plamo_fast.cli", "sft", str(step.folder / "train.yaml"),
    ]  # fmt: skip
    bad = {**recipe, "launcher": {"executor": "k8s", "processes": 0}}
    with pytest.raises(RecipeError, match="executor: 'k8s' is not one of local, slurm"):
        load(tmp_path, bad)


def test_a_moved_run_folder_keeps_every_step_done(tmp_path: Path):
    import shutil

    run_all(load(tmp_path))
    moved = tmp_path / "elsewhere" / "run2"
    moved.parent.mkdir()
    shutil.move(tmp_path / "run", moved)
    loaded = load_recipe(tmp_path / "recipe.yaml", moved)
    assert [d.action for d in plan(loaded)] == [SKIP] * 5


def test_the_demo_never_trains_or_samples_on_its_held_out_problems(tmp_path):
    """tiny-cpu's held-out math (what every model is scored on) shares no problem with the
    training data or the on-policy DPO prompts."""
    from plamo_fast.recipe import find_recipe
    from plamo_fast.recipe.execute import run_step

    loaded = load_recipe(find_recipe("tiny-cpu"), tmp_path / "run")
    steps = {s.name: s for s in loaded.steps}
    for name in ("math_data", "dpo_prompts"):
        run_step(steps[name], False)

    def problems(path: Path) -> list[str]:
        lines = path.read_text(encoding="utf-8").splitlines()
        return [json.dumps(json.loads(x)["params"], sort_keys=True) for x in lines]

    held_out = set(problems(steps["math_data"].output("test")))
    assert len(held_out) >= 40
    assert not held_out & set(problems(steps["math_data"].output()))
    assert not held_out & set(problems(steps["dpo_prompts"].output()))


def test_a_large_input_is_hashed_once_per_version(tmp_path: Path, monkeypatch):
    """Plans and runs remember the digest of a large file (RUN/.digests.json) under its size,
    times and inode: planning again reads none of it; a changed file is hashed again."""
    from plamo_fast import digests

    big = tmp_path / "big.jsonl"
    line = json.dumps({"prompt": "x" * 1000, "response": "y"}) + "\n"
    big.write_text(line * (2 * digests.MEMO_MIN // len(line)))
    step = {"name": "d", "kind": "dedup", "params": {"inputs": [str(big)]}}
    recipe = load(tmp_path, {"name": "big", "steps": [step]})
    hashed = []
    real = digests.sha256_file
    monkeypatch.setattr(digests, "sha256_file", lambda p: hashed.append(Path(p)) or real(p))

    assert run_all(recipe) == ["d"]
    assert hashed.count(big) == 1  # planned and recorded from one hashing
    hashed.clear()
    assert [d.action for d in plan(recipe)] == [SKIP]
    assert big not in hashed
    big.write_text(line * (2 * digests.MEMO_MIN // len(line)) + line)
    decisions = plan(recipe)
    assert hashed.count(big) == 1 and decisions[0].action == RUN
    assert any("changed" in r for r in decisions[0].reasons), decisions[0].reasons
