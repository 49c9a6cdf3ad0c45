"""The slurm executor: job scripts (without Slurm), and CPU-only recipes run as sbatch jobs on
a single-node Slurm cluster that the test starts in a temporary folder (skipped, with the
reason, where slurmctld/slurmd/sbatch are absent or the cluster does not come up).

What runs against real Slurm: one job per step with afterok dependencies, records equal to a
local run's, a second run submitting nothing, a failed job with its downstream job cancelled
(and the next run resubmitting from there), no duplicate submission while jobs are queued,
the recipe's and a step's extra sbatch options. Not here: several nodes, GPUs."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from plamo_fast.cli import main
from plamo_fast.errors import UsageError
from plamo_fast.recipe import slurm
from plamo_fast.recipe.record import RECORD
from plamo_fast.recipe.spec import RecipeError, load_recipe

DAEMONS = ("slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scontrol")


def _tool(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.is_file()),
        None,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _conf(root: Path) -> str:
    cpus = os.cpu_count() or 1
    return "\n".join([
        "ClusterName=pftest",
        "SlurmctldHost=localhost",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/none",  # 22.05 accepts it: no munged to start
        "CredType=cred/none",
        f"SlurmctldPort={_free_port()}",
        f"SlurmdPort={_free_port()}",
        f"StateSaveLocation={root}/state",
        f"SlurmdSpoolDir={root}/spool",
        f"SlurmctldPidFile={root}/slurmctld.pid",
        f"SlurmdPidFile={root}/slurmd.pid",
        f"SlurmctldLogFile={root}/slurmctld.log",
        f"SlurmdLogFile={root}/slurmd.log",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        "MpiDefault=none",
        "ReturnToService=2",
        "MinJobAge=600",
        "MailProg=/bin/true",
        f"NodeName=localhost CPUs={cpus} RealMemory=1000 State=UNKNOWN",
        "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
    ]) + "\n"  # fmt: skip


def _log_tail(root: Path) -> str:
    """The daemons' last errors (fatal ones first)."""
    tails = []
    for daemon in DAEMONS:
        lines = []
        for path in (root / f"{daemon}.log", root / f"{daemon}.stderr"):
            if path.is_file():
                lines += [line for line in path.read_text(errors="replace").splitlines()
                          if "fatal" in line or "error" in line]  # fmt: skip
        lines.sort(key=lambda line: "fatal" not in line)
        if lines:
            tails.append(f"{daemon}: {' | '.join(lines[:3])}")
    return "; ".join(tails) or "no error logged"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A one-node Slurm cluster of this machine; SLURM_CONF points the clients at it."""
    missing = [t for t in (*DAEMONS, *CLIENTS) if _tool(t) is None]
    if missing:
        pytest.skip(f"Slurm is not installed ({', '.join(missing)} not found; Debian/Ubuntu: "
                    "apt-get install slurm-wlm)")  # fmt: skip
    if os.geteuid() != 0:
        pytest.skip("a test Slurm cluster needs root (slurmd starts jobs as their user)")
    root = tmp_path_factory.mktemp("slurm")
    for sub in ("state", "spool"):
        (root / sub).mkdir()
    conf = root / "slurm.conf"
    conf.write_text(_conf(root))
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    daemons = []
    try:
        for name, args in (("slurmctld", ["-c", "-i"]), ("slurmd", ["-N", "localhost"])):
            with open(root / f"{name}.stderr", "w") as log:  # the child keeps its own copy
                daemons.append(subprocess.Popen([_tool(name), "-D", *args, "-f", str(conf)],
                                                stdout=log, stderr=subprocess.STDOUT))  # fmt: skip
        deadline = time.monotonic() + 30
        state = ""
        while time.monotonic() < deadline:
            if any(d.poll() is not None for d in daemons):
                break
            done = subprocess.run([_tool("sinfo"), "-h", "-o", "%T"], capture_output=True,
                                  text=True, check=False)  # fmt: skip
            state = done.stdout.strip()
            if state == "idle":
                break
            time.sleep(0.5)
        if state != "idle":
            pytest.skip(f"the test Slurm cluster did not come up (node state {state!r}; "
                        f"{_log_tail(root)})")  # fmt: skip
        yield root
    finally:
        for d in reversed(daemons):
            d.terminate()
        for d in daemons:
            try:
                d.wait(timeout=15)
            except subprocess.TimeoutExpired:
                d.kill()
                d.wait()
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old


class Overdue(Exception):
    pass


@pytest.fixture
def slurm_test(cluster):
    """The cluster, with at most 120 s for the test (a job that never ends fails it, rather
    than hanging a --wait)."""

    def overdue(signum, frame):
        raise Overdue("a Slurm test ran past 120 s (see the jobs' logs in the run folder)")

    previous = signal.signal(signal.SIGALRM, overdue)
    signal.alarm(120)
    try:
        yield cluster
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _recipe(tmp_path: Path, executor: str, name: str = "r.yaml", **launcher):
    """math (synth) -> decon (decontaminate against bench.jsonl) -> clean (dedup)."""
    bench = tmp_path / "bench.jsonl"
    if not bench.exists():
        bench.write_text(json.dumps({"question": "What is 1 + 1?"}) + "\n")
    recipe = {
        "name": "slurm-test",
        "launcher": {"executor": executor, **launcher},
        "steps": [
            {"name": "math", "kind": "synth_math",
             "params": {"n": 40, "lang": "en", "mix": "arithmetic.add=1", "holdout": 0.2}},
            {"name": "decon", "kind": "decontaminate",
             "params": {"inputs": ["${steps.math.output}"],
                        "benches": ["b=${recipe_dir}/bench.jsonl"]}},
            {"name": "clean", "kind": "dedup", "params": {"inputs": ["${steps.decon.output}"]}},
        ],
    }  # fmt: skip
    path = tmp_path / name
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def _run(path: Path, run_dir: Path, *extra: str) -> int:
    return main(["recipe", "run", str(path), "-o", str(run_dir), "-q", *extra])


def _jobs(run_dir: Path) -> dict:
    return {name: e["job"] for name, e in json.loads((run_dir / slurm.JOBS).read_text())
            ["steps"].items()}  # fmt: skip


def _record(run_dir: Path, step: str) -> dict:
    return json.loads((run_dir / step / RECORD).read_text())


def _status(path: Path, run_dir: Path, capsys) -> dict[str, str]:
    capsys.readouterr()
    assert main(["recipe", "status", str(path), "-o", str(run_dir)]) == 0
    return {line.split()[1]: line for line in capsys.readouterr().out.splitlines()}


def test_each_step_is_a_job_after_its_upstream_and_records_match_a_local_run(
    slurm_test, tmp_path: Path, capsys
):
    path, run_dir = _recipe(tmp_path, "slurm"), tmp_path / "run"
    assert _run(path, run_dir, "--wait", "--poll", "0.3") == 0
    jobs = _jobs(run_dir)
    assert sorted(jobs) == ["clean", "decon", "math"] and len(set(jobs.values())) == 3
    entries = json.loads((run_dir / slurm.JOBS).read_text())["steps"]
    assert entries["decon"]["after"] == [jobs["math"]]
    assert entries["clean"]["after"] == [jobs["decon"]]
    for name, job in jobs.items():  # each record written by its own job
        assert _record(run_dir, name)["slurm_job"] == job
        assert (run_dir / name / "slurm" / f"{job}.err").is_file()
        assert (run_dir / name / "slurm" / "job.sh").is_file()
    order = [_record(run_dir, n) for n in ("math", "decon", "clean")]
    assert order[0]["finished"] <= order[1]["started"]
    assert order[1]["finished"] <= order[2]["started"]
    assert (run_dir / "report.md").is_file()

    local_path, local_dir = _recipe(tmp_path, "local", "local.yaml"), tmp_path / "local"
    assert _run(local_path, local_dir) == 0
    for name in jobs:
        a, b = _record(run_dir, name), _record(local_dir, name)
        for k in ("fingerprint", "settings", "inputs", "outputs"):
            assert a[k] == b[k], (name, k)

    capsys.readouterr()
    assert _run(path, run_dir, "--wait", "--poll", "0.3") == 0
    assert "every selected step of slurm-test is done" in capsys.readouterr().err
    assert _jobs(run_dir) == jobs  # nothing submitted
    assert all(line.startswith("done") for line in _status(path, run_dir, capsys).values())


def test_a_failed_job_cancels_its_downstream_and_the_next_run_resubmits_from_it(
    slurm_test, tmp_path: Path, capsys
):
    bad = tmp_path / "bench.jsonl"
    bad.write_text("{not json\n")
    path, run_dir = _recipe(tmp_path, "slurm"), tmp_path / "run"
    assert _run(path, run_dir, "--wait", "--poll", "0.3") == 1
    err = capsys.readouterr().err
    assert "step decon failed" in err and "step clean cancelled" in err
    jobs = _jobs(run_dir)
    status = _status(path, run_dir, capsys)
    assert status["math"].startswith("done")
    assert status["decon"].startswith("failed") and f"{bad}:1" in status["decon"]
    assert f"job {jobs['decon']}" in status["decon"] and ".err" in status["decon"]
    assert status["clean"].startswith("cancelled") and "upstream decon failed" in status["clean"]
    assert not (run_dir / "clean" / RECORD).exists()
    assert not (run_dir / "clean" / "slurm" / f"{jobs['clean']}.err").exists()  # never ran

    bad.write_text(json.dumps({"question": "What is 1 + 1?"}) + "\n")
    assert _run(path, run_dir, "--wait", "--poll", "0.3") == 0
    again = _jobs(run_dir)
    assert again["math"] == jobs["math"]  # done: not submitted again
    assert again["decon"] != jobs["decon"] and again["clean"] != jobs["clean"]
    assert _record(run_dir, "clean")["slurm_job"] == again["clean"]


def test_queued_jobs_are_not_submitted_twice_and_extra_options_reach_sbatch(
    slurm_test, tmp_path: Path, capsys
):
    path = _recipe(tmp_path, "slurm", slurm=["--hold"])  # every job held: stays queued
    recipe = yaml.safe_load(path.read_text())
    recipe["steps"][2]["launcher"] = {"slurm": ["--hold", "--comment=pf-clean"]}
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    run_dir = tmp_path / "run"
    assert _run(path, run_dir) == 0  # --no-wait: submits and returns
    jobs = _jobs(run_dir)
    assert capsys.readouterr().out.split() == [jobs["math"], jobs["decon"], jobs["clean"]]
    status = _status(path, run_dir, capsys)
    assert all(status[n].startswith("queued") and f"job {jobs[n]}" in status[n] for n in jobs)
    comment = subprocess.run([_tool("squeue"), "-h", "-o", "%k", "-j", jobs["clean"]],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    assert comment == "pf-clean"

    assert _run(path, run_dir) == 0
    err = capsys.readouterr().err
    for name in jobs:
        assert f"{name}: job {jobs[name]} is still PENDING: not submitted again" in err
    assert _jobs(run_dir) == jobs
    subprocess.run([_tool("scontrol"), "release", ",".join(jobs.values())], check=True)
    assert _run(path, run_dir, "--wait", "--poll", "0.3") == 0  # waits for the same jobs
    assert _jobs(run_dir) == jobs
    assert all(_record(run_dir, n)["slurm_job"] == jobs[n] for n in jobs)


def test_a_node_of_a_multi_node_job_gets_its_rank_and_the_main_address(slurm_test, tmp_path: Path):
    """The job script's exports and the srun launch of a multi-node step, in a real job (one
    node here: rank 0), with a stand-in for `accelerate launch` that prints its arguments."""
    from plamo_fast.recipe import find_recipe

    loaded = load_recipe(find_recipe("plamo-100b"), tmp_path / "run")
    text = slurm.job_script(loaded, loaded.step("sft_math"))
    exports = [line for line in text.splitlines() if line.startswith("export PLAMO_FAST_MAIN")]
    fake = [sys.executable, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))",
            "accelerate.commands.launch", "--num_machines", "8"]  # fmt: skip
    command = slurm.across_nodes(fake, SimpleNamespace(machines=8))
    assert command[1] == "--nodes=8"
    command[1] = "--nodes=1"  # the test cluster has one node
    script = tmp_path / "job.sh"
    script.write_text("\n".join(["#!/bin/bash", "set -euo pipefail", *exports,
                                 shlex.join(command)]) + "\n")  # fmt: skip
    out = tmp_path / "job.out"
    done = subprocess.run([_tool("sbatch"), "--parsable", "--wait", f"--output={out}", str(script)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, (done.stderr, out.read_text() if out.exists() else "")
    job = int(done.stdout.strip().split(";")[0])
    assert json.loads(out.read_text().strip().splitlines()[-1]) == [
        "accelerate.commands.launch", "--machine_rank", "0", "--main_process_ip", "localhost",
        "--main_process_port", str(29500 + job % 10000), "--num_machines", "8",
    ]  # fmt: skip


# -- without Slurm --------------------------------------------------------------------------


def test_multi_node_job_script_of_the_100b_recipe(tmp_path: Path):
    from plamo_fast.recipe import find_recipe

    loaded = load_recipe(find_recipe("plamo-100b"), tmp_path / "run")
    train = slurm.job_script(loaded, loaded.step("sft_math"), python="/py", cwd=Path("/work"))
    lines = train.splitlines()
    sbatch = [line.removeprefix("#SBATCH ") for line in lines if line.startswith("#SBATCH")]
    logs = tmp_path / "run" / "sft_math" / "slurm"
    assert sbatch == [
        "--job-name=pf-plamo-100b-sft_math", "--nodes=8", "--ntasks-per-node=1",
        f"--output={logs}/%j.out", f"--error={logs}/%j.err", "--gpus-per-node=8",
        "--partition=gpu", "--exclusive", "--time=48:00:00",
    ]  # fmt: skip
    assert 'export PLAMO_FAST_MAIN_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" ' in train
    assert "export PLAMO_FAST_MAIN_PORT=$(( 29500 + SLURM_JOB_ID % 10000 ))" in train
    assert lines[-1] == (f"exec /py -m plamo_fast.cli recipe run-step {find_recipe('plamo-100b')} "
                         f"--dir {tmp_path / 'run'} sft_math")  # fmt: skip
    assert "cd /work" in lines
    if shutil.which("bash"):
        subprocess.run(["bash", "-n"], input=train, text=True, check=True)
    # sampling: one GPU node; a data step: one CPU node with the step's own options
    sample = slurm.job_script(loaded, loaded.step("dpo1_sample"))
    assert "#SBATCH --nodes=1\n" in sample and "#SBATCH --gpus-per-node=8\n" in sample
    assert "PLAMO_FAST_MAIN_ADDR" not in sample
    data = slurm.job_script(loaded, loaded.step("math_clean"))
    assert "#SBATCH --partition=cpu\n" in data and "--partition=gpu" not in data
    assert "gpus-per-node" not in data


def test_each_node_launches_accelerate_with_its_rank_and_the_main_address():
    launch = ["/py", "-m", "accelerate.commands.launch", "--num_processes", "64",
              "--num_machines", "8", "-m", "plamo_fast.cli", "sft", "t.yaml"]  # fmt: skip
    wrapped = slurm.across_nodes(launch, SimpleNamespace(machines=8))
    assert wrapped[:4] == ["srun", "--nodes=8", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
    assert wrapped[5:7] == ["-m", "plamo_fast.recipe.slurm"] and wrapped[7:] == launch
    assert slurm.across_nodes(launch, SimpleNamespace(machines=1)) == launch
    env = {"SLURM_NODEID": "3", "PLAMO_FAST_MAIN_ADDR": "gpu001", "PLAMO_FAST_MAIN_PORT": "31234"}
    assert slurm.node_command(launch, env) == [
        "/py", "-m", "accelerate.commands.launch", "--machine_rank", "3",
        "--main_process_ip", "gpu001", "--main_process_port", "31234",
        "--num_processes", "64", "--num_machines", "8", "-m", "plamo_fast.cli", "sft", "t.yaml",
    ]  # fmt: skip
    with pytest.raises(UsageError, match="SLURM_NODEID"):
        slurm.node_command(launch, {})


def test_without_sbatch_the_run_is_refused_clearly(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    path, run_dir = _recipe(tmp_path, "slurm"), tmp_path / "run"
    assert _run(path, run_dir) == 1
    assert "`sbatch` is not on PATH" in capsys.readouterr().err
    assert not run_dir.exists()


def test_a_step_cannot_choose_its_own_executor(tmp_path: Path):
    path = _recipe(tmp_path, "slurm")
    recipe = yaml.safe_load(path.read_text())
    recipe["steps"][0]["launcher"] = {"executor": "local"}
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(RecipeError, match="steps.math.launcher.executor: the executor is the"):
        load_recipe(path, tmp_path / "run")


def test_a_job_pending_forever_after_a_failed_upstream_counts_as_cancelled(
    tmp_path: Path, monkeypatch
):
    """Where the cluster ignores --kill-on-invalid-dep, the downstream job stays pending with
    DependencyNeverSatisfied: status says cancelled and --wait does not wait for it."""
    loaded = load_recipe(_recipe(tmp_path, "slurm"), tmp_path / "run")
    (tmp_path / "run" / "decon" / "slurm").mkdir(parents=True)
    (tmp_path / "run" / "decon" / "slurm" / "7.err").write_text("plamo-fast: error: bad.jsonl:1\n")
    entries = {"decon": {"job": "7"}, "clean": {"job": "8"}}
    (tmp_path / "run" / slurm.JOBS).write_text(json.dumps({"steps": entries}))
    states = {"7": ("FAILED", "NonZeroExitCode"), "8": ("PENDING", "DependencyNeverSatisfied")}
    monkeypatch.setattr(slurm, "job_states", lambda ids: states)
    views = slurm.job_views(loaded)  # what status shows and --wait waits on
    assert views["decon"].state == "failed" and "bad.jsonl:1" in views["decon"].detail
    assert views["clean"].state == "cancelled" and "upstream decon failed" in views["clean"].detail
