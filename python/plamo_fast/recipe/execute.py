"""Running one step: the package function of its kind, writing into the step's folder;
returns the step's metrics (the function's summary)."""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
from pathlib import Path

import yaml

from plamo_fast.errors import UsageError
from plamo_fast.recipe.spec import Step


def run_step(step: Step, progress: bool) -> dict:
    return RUNNERS[step.kind.name](step, step.params, progress)


def _synth_math(step: Step, p, progress: bool) -> dict:
    from plamo_fast.synth.run import synth_math

    return synth_math(
        step.output(), p.n, seed=p.seed, lang=p.lang, mix=p.mix, difficulty=p.difficulty,
        features=p.features or None, holdout=p.holdout,
    )  # fmt: skip


def _synth_judge(step: Step, p, progress: bool) -> dict:
    from plamo_fast.synth.judge import synth_judge

    return synth_judge(
        [Path(i) for i in p.inputs], step.output(), Path(p.judge_prompts), wrong=p.wrong,
        seed=p.seed, limit=p.n,
    )  # fmt: skip


def _synth_instruct(step: Step, p, progress: bool) -> dict:
    from plamo_fast.generation.backends import SamplingOptions
    from plamo_fast.synth.instruct.filters import FilterConfig
    from plamo_fast.synth.instruct.run import EngineOptions, Plan, synth_instruct

    sampling = SamplingOptions(n=1, temperature=p.temperature, max_new_tokens=p.max_new_tokens)
    engine = EngineOptions(
        backend=p.backend, base_url=p.base_url, concurrency=p.concurrency,
        tensor_parallel_size=p.tensor_parallel_size, sampling=sampling,
    )  # fmt: skip
    return synth_instruct(
        step.output(), p.model, Plan(p.n, seed=p.seed, requests=p.requests, titles=p.titles),
        seeds=Path(p.seeds) if p.seeds else None, lang=p.lang,
        prompts_file=Path(p.prompts) if p.prompts else None,
        filters=FilterConfig(novelty=p.novelty), bench=list(p.benches), engine=engine,
        progress=progress, allow_empty=p.allow_empty,
    )  # fmt: skip


def _translate(step: Step, p, progress: bool) -> dict:
    from plamo_fast.translate.filters import FilterConfig
    from plamo_fast.translate.run import translate

    return translate(
        Path(p.input), p.model, step.output(), to=p.to, source_lang=p.source_lang,
        backend=p.backend, base_url=p.base_url, concurrency=p.concurrency,
        tensor_parallel_size=p.tensor_parallel_size, max_new_tokens=p.max_new_tokens,
        max_chunk_chars=p.max_chunk_chars,
        filter_config=FilterConfig(back_translate=p.back_translate), skip_bad=p.skip_bad,
        allow_empty=p.allow_empty, progress=progress,
    )  # fmt: skip


def _dedup(step: Step, p, progress: bool) -> dict:
    from plamo_fast.data.dedup import dedup

    return dedup(
        [Path(i) for i in p.inputs], step.output(), near=p.near, threshold=p.threshold,
        key=p.key, keep=p.keep, ngram=p.ngram, num_perm=p.num_perm, seed=p.seed,
        report_path=step.output("report"), skip_bad=p.skip_bad, progress=progress,
    )  # fmt: skip


def _decontaminate(step: Step, p, progress: bool) -> dict:
    from plamo_fast.data.decontaminate import decontaminate

    return decontaminate(
        [Path(i) for i in p.inputs], list(p.benches), step.output(),
        report_path=step.output("report"), bench_field=p.bench_field, skip_bad=p.skip_bad,
        progress=progress,
    )  # fmt: skip


def _pack(step: Step, p, progress: bool) -> dict:
    from plamo_fast.data.pack import pack

    return pack(
        list(p.inputs), p.tokenizer, step.output(), max_length=p.max_length, kind=p.kind,
        truncate=p.truncate, last_turn_only=p.last_turn_only, seed=p.seed, skip_bad=p.skip_bad,
        allow_empty=p.allow_empty, progress=progress,
    )  # fmt: skip


def _tiny_model(step: Step, p, progress: bool) -> dict:
    from plamo_fast.outputs import atomic_output
    from plamo_fast.recipe.tiny import write_tiny_model

    with atomic_output(step.output(), command="recipe-tiny-model") as partial:
        shape = write_tiny_model(
            partial, p.corpus, layers=p.layers, hidden=p.hidden, intermediate=p.intermediate,
            heads=p.heads, kv_heads=p.kv_heads, max_positions=p.max_positions, seed=p.seed,
        )  # fmt: skip
    return shape


def _train(step: Step, p, progress: bool) -> dict:
    """In this process when the launcher asks for one process; else ``accelerate launch`` of
    ``plamo-fast sft|dpo`` on the step's config (written to the step folder)."""
    kind = step.kind.name
    launcher = step.launcher
    config_path = step.folder / "train.yaml"
    step.folder.mkdir(parents=True, exist_ok=True)
    run_config, skipped = _without_empty_raw(step, p.config)
    config = dataclasses.asdict(run_config)
    config_path.write_text(
        yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    if launcher.processes * launcher.machines == 1:
        from plamo_fast.train.api import train

        train(run_config, kind, progress=progress)
    else:
        from plamo_fast.recipe.steps import accelerate_command, environ_without_launch

        command = accelerate_command(config_path, kind, launcher)
        if launcher.executor == "slurm":  # a multi-node step inside its Slurm job
            from plamo_fast.recipe.slurm import across_nodes

            command = across_nodes(command, launcher)
        done = subprocess.run(command, env=environ_without_launch(), check=False)
        if done.returncode != 0:
            raise UsageError(f"step {step.name}: {' '.join(command)} exited {done.returncode}")
    metrics = _training_metrics(step.output())
    if skipped:
        metrics["empty_inputs_skipped"] = skipped
    return metrics


def _without_empty_raw(step: Step, config):
    """The config without the raw files that hold no record (a round whose on-policy pairs all
    tied made an empty pairs file; pack refuses an empty input). All empty: an error."""
    stage = config.stages[0]
    empty = [s for s in stage.data.raw if _is_empty(s)]
    if not empty:
        return config, []
    if len(empty) == len(stage.data.raw):
        raise UsageError(f"step {step.name}: every training file is empty: {', '.join(empty)}")
    config = copy.deepcopy(config)
    config.stages[0].data.raw = [s for s in stage.data.raw if s not in empty]
    return config, empty


def _is_empty(spec: str) -> bool:
    from plamo_fast.data.pack import parse_input

    path = parse_input(spec)[0]
    return path.is_file() and path.suffix == ".jsonl" and not path.read_bytes().strip()


def _training_metrics(model: Path) -> dict:
    """The last logged values of the stage (metrics.jsonl in the published model)."""
    path = model / "metrics.jsonl"
    records = [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    records = [r for r in records if "loss" in r]
    if not records:
        return {"steps": 0}
    last = records[-1]
    keep = ("step", "loss", "rewards/accuracy", "rewards/margin", "trained_tokens")
    metrics = {k: last[k] for k in keep if k in last}
    metrics["first_loss"] = records[0]["loss"]
    return metrics


def _sampling_options(p, n: int, temperature: float):
    from plamo_fast.generation.backends import SamplingOptions

    return SamplingOptions(
        n=n, temperature=temperature, top_p=getattr(p, "top_p", 1.0),
        max_new_tokens=p.max_new_tokens, seed=getattr(p, "seed", 0),
    )  # fmt: skip


def _sample(step: Step, p, progress: bool) -> dict:
    from plamo_fast.sample.sample import sample

    return sample(
        Path(p.prompts), p.model, step.output(), backend=p.backend,
        options=_sampling_options(p, p.n, p.temperature), base_url=p.base_url,
        concurrency=p.concurrency, tensor_parallel_size=p.tensor_parallel_size,
        skip_bad=p.skip_bad, progress=progress,
    )  # fmt: skip


def _score(step: Step, p, progress: bool) -> dict:
    from plamo_fast.sample.score import score

    return score(
        Path(p.candidates), step.output(), judge=p.judge, reward_model=p.reward_model,
        verifier=p.verifier, backend=p.backend, base_url=p.base_url,
        judge_template=p.judge_template, concurrency=p.concurrency, progress=progress,
    )  # fmt: skip


def _pairs(step: Step, p, progress: bool) -> dict:
    from plamo_fast.sample.pairs import make_pairs, spin_pairs

    if p.spin:
        return spin_pairs(
            Path(p.spin), Path(p.scored), step.output(), report_path=step.output("report"),
            allow_empty=p.allow_empty,
        )  # fmt: skip
    return make_pairs(
        Path(p.scored), step.output(), min_margin=p.min_margin, drop_truncated=p.drop_truncated,
        report_path=step.output("report"), allow_empty=p.allow_empty,
    )  # fmt: skip


def _merge(step: Step, p, progress: bool) -> dict:
    from plamo_fast.merge.api import merge

    result = merge(
        list(p.models), method=p.method, t=p.t, weights=p.weights, output=step.output(),
        progress=progress,
    )  # fmt: skip
    return {
        "method": p.method,
        "t": p.t,
        "tensors": result.tensors,
        "linear_fallbacks": result.linear_fallbacks,
        "seconds": round(result.seconds, 3),
    }


def _eval_math(step: Step, p, progress: bool) -> dict:
    """Greedy answers to the held-out problems, checked by the math verifier: accuracy."""
    from plamo_fast.sample.sample import sample
    from plamo_fast.sample.score import score

    options = _sampling_options(p, 1, 0.0)
    sample(
        Path(p.data), p.model, step.output("samples"), backend=p.backend, options=options,
        tensor_parallel_size=p.tensor_parallel_size, progress=progress,
    )  # fmt: skip
    score(step.output("samples"), step.output(), verifier="math", progress=progress)
    scores = []
    with open(step.output(), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                scores.append(json.loads(line)["candidates"][0]["score"])
    right = sum(1 for s in scores if s == 1.0)
    return {
        "problems": len(scores),
        "correct": right,
        "accuracy": right / len(scores) if scores else 0.0,
        "unreadable": sum(1 for s in scores if s is None),
    }


def _endpoint(e):
    from plamo_fast.eval.mt_bench_run import Endpoint

    return Endpoint(
        e.model, backend=e.backend, base_url=e.base_url or None, concurrency=e.concurrency,
        tensor_parallel_size=e.tensor_parallel_size,
    )  # fmt: skip


def _eval_jaster(step: Step, p, progress: bool) -> dict:
    from plamo_fast.eval.jaster import run_jaster

    return run_jaster(
        Path(p.data), p.model, step.output(), shots=list(p.shots), limit=p.limit, chat=p.chat,
        datasets=p.datasets, backend=p.backend, tensor_parallel_size=p.tensor_parallel_size,
        progress=progress,
    )  # fmt: skip


def _judged_model(p):
    from plamo_fast.eval.mt_bench_run import Endpoint

    return Endpoint(p.model, backend=p.backend, tensor_parallel_size=p.tensor_parallel_size)


def _eval_mt_bench(step: Step, p, progress: bool) -> dict:
    from plamo_fast.eval.mt_bench_run import run_mt_bench

    return run_mt_bench(
        Path(p.questions), step.output(), judge=_endpoint(p.judge),
        judge_prompts=Path(p.judge_prompts), model=_judged_model(p),
        references=Path(p.references) if p.references else None,
        max_new_tokens=p.max_new_tokens, turns=p.turns, progress=progress,
    )  # fmt: skip


def _eval_rakuda(step: Step, p, progress: bool) -> dict:
    from plamo_fast.eval.rakuda import run_rakuda

    optional = {
        "judge_prompts": p.judge_prompts, "pair_prompts": p.pair_prompts, "baseline": p.baseline
    }  # fmt: skip
    return run_rakuda(
        Path(p.questions), step.output(), judge=_endpoint(p.judge), model=_judged_model(p),
        max_new_tokens=p.max_new_tokens, progress=progress,
        **{k: Path(v) for k, v in optional.items() if v},
    )  # fmt: skip


RUNNERS = {
    "synth_math": _synth_math,
    "synth_judge": _synth_judge,
    "synth_instruct": _synth_instruct,
    "translate": _translate,
    "dedup": _dedup,
    "decontaminate": _decontaminate,
    "pack": _pack,
    "tiny_model": _tiny_model,
    "sft": _train,
    "dpo": _train,
    "sample": _sample,
    "score": _score,
    "pairs": _pairs,
    "merge": _merge,
    "eval_math": _eval_math,
    "eval_jaster": _eval_jaster,
    "eval_mt_bench": _eval_mt_bench,
    "eval_rakuda": _eval_rakuda,
}
