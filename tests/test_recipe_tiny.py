"""The shipped tiny-cpu recipe (the demo's) end to end, shrunk to a few training steps and a
handful of problems so that it runs in CI: every step runs and is recorded, the report holds
every model's evaluation, a second run skips everything, a run killed at a random step and
resumed ends with the same models and results as an uninterrupted one, and a changed
parameter reruns exactly the steps downstream of it."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from backend_fixtures import Server, choice  # noqa: E402

from plamo_fast.cli import main  # noqa: E402
from plamo_fast.recipe import find_recipe  # noqa: E402
from plamo_fast.recipe.record import RECORD, STARTED  # noqa: E402
from plamo_fast.recipe.runner import plan  # noqa: E402
from plamo_fast.recipe.spec import load_recipe  # noqa: E402

pytestmark = pytest.mark.torch


def grading_judge(body: dict, calls: int) -> tuple[int, list[dict]]:
    """A loopback judge (the test double of a served judge model) that grades as a competent
    one would: [[10]] when the answer's last boxed result is the reference answer, else [[1]]."""
    user = body["messages"][-1]["content"]
    answer, _, reference = user.rpartition("[Reference answer]\n")
    boxed = re.findall(r"\\boxed\{([^}]*)\}", answer)
    right = bool(boxed) and boxed[-1] == reference.strip()
    text = f"The final result {'matches' if right else 'does not match'}. [[{10 if right else 1}]]"
    return 200, [choice(0, text)]


@pytest.fixture(scope="module")
def judge_server():
    server = Server(reply=grading_judge)
    yield server
    server.close()


def micro_recipe(path: Path, judge_url: str, **changes) -> Path:
    """tiny-cpu with fewer problems, steps and tokens (the same steps and references), its
    judged set graded by the loopback judge at ``judge_url``."""
    recipe_dir = str(find_recipe("tiny-cpu").parent)
    text = find_recipe("tiny-cpu").read_text().replace("${recipe_dir}", recipe_dir)
    recipe = yaml.safe_load(text)
    recipe["vars"].update(judge="loopback-judge", judge_base_url=judge_url)
    by_name = {s.get("name") or s.get("repeat"): s for s in recipe["steps"]}
    by_name["math_data"]["params"].update(n=80, holdout=0.06)
    by_name["dpo_prompts"]["params"].update(n=3)
    by_name["sft_math"]["params"].update(epochs=1, max_steps=4, save_every=2, micro_batch_rows=2)
    by_name["sft_general"]["params"].update(max_steps=2)
    for step in by_name["round"]["steps"]:
        if step["kind"] == "sample":
            step["params"].update(max_new_tokens=16, n=2)
        if step["kind"] == "dpo":
            step["params"].update(max_steps=2)
    by_name["dpo_spin"]["params"].update(max_steps=2)
    for step in recipe["steps"]:
        if step.get("kind") in ("eval_math", "eval_mt_bench"):
            step["params"].update(max_new_tokens=16)
    for name, value in changes.items():
        step, _, key = name.partition("__")
        target = by_name.get(step) or next(
            s for s in by_name["round"]["steps"] if s["name"] == step
        )
        target["params"][key] = value
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def weights_and_results(run: Path) -> dict:
    """What a run made, independent of where it ran: every model's weights, every
    evaluation's metrics, every pair file's count."""
    out = {}
    for record_path in sorted(run.glob(f"*/{RECORD}")):
        record = json.loads(record_path.read_text())
        step = record_path.parent
        for shard in sorted(step.glob("model/*.safetensors")):
            out[f"{step.name}/{shard.name}"] = shard.read_bytes()
        if record["kind"] == "eval_math":
            out[step.name] = record["metrics"]
        if record["kind"] == "eval_mt_bench":
            out[step.name] = {k: record["metrics"][k] for k in ("average", "failed")}
        if record["kind"] == "pairs":
            out[step.name] = record["outputs"]["output"]["records"]
    return out


@pytest.fixture(scope="module")
def finished(tmp_path_factory, judge_server) -> tuple[Path, Path]:
    """One uninterrupted run of the micro recipe: (recipe file, run folder)."""
    folder = tmp_path_factory.mktemp("tiny")
    recipe = micro_recipe(folder / "micro.yaml", judge_server.url)
    assert main(["recipe", "run", str(recipe), "-o", str(folder / "run"), "-q"]) == 0
    return recipe, folder / "run"


def test_every_step_runs_and_the_report_compares_every_model(finished, capsys):
    recipe, run = finished
    loaded = load_recipe(recipe, run)
    assert all((s.folder / RECORD).is_file() for s in loaded.steps)
    report = (run / "report.md").read_text()
    for model in ["base", "sft_math", "sft_general", "round2_dpo", "dpo_spin", "merged"]:
        assert f"| {model} | eval_" in report
    assert "## round2_dpo (dpo)" in report
    # The judged set: the held-out problems, answered greedily as eval_math answers them, each
    # graded once by the judge; its mean rating agrees with the verifier's count.
    for judged, evaluated in [("judged_sft_general", "eval_sft_general"),
                              ("judged_merged", "eval_merged")]:  # fmt: skip
        metrics = json.loads((run / judged / RECORD).read_text())["metrics"]
        math = json.loads((run / evaluated / RECORD).read_text())["metrics"]
        n, right = math["problems"], math["correct"]
        assert metrics["judgements"] == n and metrics["failed"] == 0
        assert metrics["average"] == pytest.approx((10 * right + (n - right)) / n)
        assert f"| {judged} | judge's mean rating" in report
    scored = [json.loads(x) for x in (run / "eval_base" / "scored.jsonl").read_text().splitlines()]
    record = json.loads((run / "eval_base" / RECORD).read_text())
    right = sum(r["candidates"][0]["score"] == 1.0 for r in scored)
    assert record["metrics"]["correct"] == right
    assert record["metrics"]["problems"] == len(scored) > 0
    # A second run finds every step done and runs nothing.
    started = time.perf_counter()
    assert main(["recipe", "run", str(recipe), "-o", str(run), "-q"]) == 0
    assert "every selected step of tiny-cpu is done" in capsys.readouterr().err
    assert time.perf_counter() - started < 20


def test_changed_parameter_reruns_exactly_its_downstream(finished, judge_server, tmp_path: Path):
    recipe, run = finished
    changed = micro_recipe(tmp_path / "changed.yaml", judge_server.url, dpo__beta=0.2)
    loaded = load_recipe(changed, run)
    to_run = [d.step.name for d in plan(loaded) if d.action == "run"]
    assert to_run == [
        "round1_dpo", "round2_sample", "round2_score", "round2_pairs", "round2_spin",
        "round2_dpo", "dpo_spin", "merged", "eval_dpo_onpolicy", "eval_dpo_spin", "eval_merged",
        "judged_dpo_onpolicy", "judged_dpo_spin", "judged_merged",
    ]  # fmt: skip
    first = {d.step.name: d.reasons for d in plan(loaded)}
    assert first["round1_dpo"] == ["parameters changed: beta: 0.1 -> 0.2"]
    assert first["dpo_spin"] == ["upstream round2_spin reruns"]


# Runs the recipe in a child process whose step ``argv[1]`` kills the process (SIGKILL) after
# ``argv[2]`` seconds of work, or as soon as the step's work ends if it ends sooner: the kill
# always falls inside that step, however fast the machine is.
_KILLING_RUN = """
import os, signal, sys, threading
import plamo_fast.recipe.execute as execute
from plamo_fast.cli import main

step_name, delay = sys.argv[1], float(sys.argv[2])
run_step = execute.run_step

def kill():
    os.kill(os.getpid(), signal.SIGKILL)

def killing_run_step(step, progress):
    if step.name != step_name:
        return run_step(step, progress)
    threading.Timer(delay, kill).start()
    run_step(step, progress)
    kill()

execute.run_step = killing_run_step
sys.exit(main(sys.argv[3:]))
"""


def _kill_at(recipe: Path, run: Path, step: str) -> None:
    """Run the recipe in another process, killed (SIGKILL) while ``step`` runs."""
    delay = random.Random(step).uniform(0.0, 0.5)
    proc = subprocess.run(
        [sys.executable, "-c", _KILLING_RUN, step, str(delay),
         "recipe", "run", str(recipe), "-o", str(run), "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_killed_at_a_random_step_and_resumed_equals_an_uninterrupted_run(finished, tmp_path):
    recipe, run = finished
    steps = [s.name for s in load_recipe(recipe, run).steps]
    seed = int(os.environ.get("RECIPE_KILL_SEED", time.time_ns() % 1000))
    step = random.Random(seed).choice(steps[4:])  # a step that runs long enough to be killed
    print(f"killing at {step} (RECIPE_KILL_SEED={seed})")
    resumed = tmp_path / "run"
    _kill_at(recipe, resumed, step)
    assert (resumed / step / STARTED).is_file()  # killed inside the step
    assert not (resumed / step / RECORD).exists() and not (resumed / "report.md").exists()
    assert main(["recipe", "run", str(recipe), "-o", str(resumed), "-q"]) == 0
    assert weights_and_results(resumed) == weights_and_results(run)
