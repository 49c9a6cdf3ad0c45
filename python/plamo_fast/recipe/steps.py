"""The step kinds a recipe may use: each has typed parameters (dataclasses, type-checked like
the ``sft`` configs, every problem listed at once), the files its step writes in its folder,
the inputs it reads (digested for the record) and the package function it calls."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from plamo_fast.train.config import _build, key


@dataclass
class SynthMathParams:
    n: int = key(0, "Problems to generate (train and holdout together).")
    seed: int = key(0, "Seed of the generator.")
    lang: str = key("ja", "ja or en.")
    mix: str | None = key(None, "Weights per family or generator (see `plamo-fast synth list`).")
    difficulty: str | None = key(None, "easy, medium, hard, or several comma-separated.")
    features: list[str] = key([], "KEY=VALUE feature filters.")
    holdout: float = key(0.0, "Fraction written to the `test` output instead.")


@dataclass
class SynthJudgeParams:
    inputs: list[str] = key([], "Records with a question, a worked solution and `answer`.")
    judge_prompts: str = key("", "FastChat judge prompts with a `single-math-v1` prompt.")
    n: int | None = key(None, "Exercises to write (default: one per input record).")
    wrong: float = key(0.5, "Share of exercises whose final answer is made wrong.")
    seed: int = key(0, "Seed of the wrong answers.")


@dataclass
class SynthInstructParams:
    model: str = key("", "The model that writes titles, questions and answers.")
    n: int = key(0, "Instruction records to keep.")
    seeds: str | None = key(None, "Seed tasks (default: the shipped Japanese ones).")
    lang: str = key("ja", "ja or en.")
    seed: int = key(0, "Seed of the rounds.")
    prompts: str | None = key(None, "YAML/JSON file replacing the prompts.")
    benches: list[str] = key([], "Benchmarks as NAME=PATH: leaked questions are rejected.")
    novelty: float = key(0.7, "ROUGE-L above which a question is not novel.")
    requests: int = key(4, "Title requests per round.")
    titles: int = key(8, "Titles asked for per request.")
    temperature: float = key(0.7, "Sampling temperature.")
    max_new_tokens: int = key(1024, "Longest reply.")
    backend: str = key("auto", "vllm, hf or openai.")
    base_url: str | None = key(None, "OpenAI-compatible server(s) (backend openai).")
    tensor_parallel_size: int = key(1, "GPUs per model (vllm).")
    concurrency: int = key(8, "Requests in flight (openai).")
    allow_empty: bool = key(False, "Write an empty output instead of failing.")


@dataclass
class TranslateParams:
    input: str = key("", "Records to translate.")
    model: str = key("", "The translating model.")
    to: str = key("ja", "Target language: ja or en.")
    source_lang: str | None = key(None, "Source language, if known (ja or en).")
    max_chunk_chars: int = key(2000, "Longest piece sent at once.")
    back_translate: bool = key(False, "Reject translations whose back-translation drifts.")
    max_new_tokens: int = key(1024, "Longest reply per chunk.")
    backend: str = key("auto", "vllm, hf or openai.")
    base_url: str | None = key(None, "OpenAI-compatible server(s) (backend openai).")
    tensor_parallel_size: int = key(1, "GPUs per model (vllm).")
    concurrency: int = key(8, "Requests in flight (openai).")
    skip_bad: bool = key(False, "Skip malformed records (counted).")
    allow_empty: bool = key(False, "Write an empty output instead of failing.")


@dataclass
class DedupParams:
    inputs: list[str] = key([], "JSONL/Parquet files to deduplicate together.")
    near: bool = key(False, "Also remove near duplicates (MinHash).")
    threshold: float = key(0.8, "Near-duplicate Jaccard threshold.")
    keep: str = key("first", "Which record of a cluster is kept.")
    ngram: int = key(5, "Shingle size of the near-duplicate sketch.")
    num_perm: int = key(128, "MinHash permutations.")
    seed: int = key(0, "MinHash seed.")
    skip_bad: bool = key(False, "Skip malformed records (counted).")
    # Last: the field named `key` hides the function `key` in the rest of the class body.
    key: str = key("prompt", "What is compared: prompt, record, or a field's name.")


@dataclass
class DecontaminateParams:
    inputs: list[str] = key([], "JSONL/Parquet files to filter.")
    benches: list[str] = key([], "Benchmarks as NAME=PATH (file or folder).")
    bench_field: str | None = key(None, "The benchmark records' question field.")
    skip_bad: bool = key(False, "Skip malformed records (counted).")


@dataclass
class PackParams:
    inputs: list[str] = key([], "Records to pack (FILE or FILE:N mixtures).")
    tokenizer: str = key("", "Tokenizer folder (a model folder holds one).")
    max_length: int = key(2048, "Packed row length in tokens.")
    kind: str = key("sft", "sft or dpo.")
    truncate: str = key("drop", "What to do with a record longer than max_length.")
    last_turn_only: bool = key(False, "Train only the last answer of a conversation.")
    seed: int = key(0, "Seed of the packing order.")
    skip_bad: bool = key(False, "Skip malformed records (counted).")
    allow_empty: bool = key(False, "Write an empty output instead of failing.")


@dataclass
class TinyModelParams:
    corpus: list[str] = key([], "JSONL files whose characters make the tokenizer's vocabulary.")
    layers: int = key(2, "Decoder layers.")
    hidden: int = key(64, "Hidden size.")
    intermediate: int = key(176, "MLP size.")
    heads: int = key(4, "Attention heads.")
    kv_heads: int = key(2, "Key/value heads.")
    max_positions: int = key(1024, "Longest sequence.")
    seed: int = key(0, "Seed of the random weights.")


@dataclass
class SampleParams:
    prompts: str = key("", "JSONL/Parquet prompts (`prompt` or `messages`).")
    model: str = key("", "The model that answers.")
    n: int = key(8, "Candidates per prompt.")
    temperature: float = key(1.0, "Sampling temperature (0: greedy).")
    top_p: float = key(1.0, "Nucleus sampling.")
    max_new_tokens: int = key(512, "Longest answer.")
    seed: int = key(0, "Per-prompt seeds derive from it.")
    backend: str = key("auto", "vllm, hf or openai.")
    base_url: str | None = key(None, "OpenAI-compatible server (backend openai).")
    tensor_parallel_size: int = key(1, "GPUs per model (vllm).")
    concurrency: int = key(8, "Requests in flight (openai).")
    skip_bad: bool = key(False, "Skip malformed prompt records (counted).")


@dataclass
class ScoreParams:
    candidates: str = key("", "Output of a sample step.")
    verifier: str | None = key(None, "math: 1 when the final answer is right, else 0.")
    judge: str | None = key(None, "Judge model.")
    reward_model: str | None = key(None, "Sequence-classification reward model.")
    judge_template: str | None = key(None, "en, ja or a YAML file.")
    backend: str = key("auto", "Backend of the judge.")
    base_url: str | None = key(None, "OpenAI-compatible server of the judge.")
    concurrency: int = key(8, "Judge requests in flight.")


@dataclass
class PairsParams:
    scored: str = key("", "Output of a score step (of a sample step with spin).")
    spin: str | None = key(None, "SFT data: SPIN pairs (its answer chosen, the sample rejected).")
    min_margin: float = key(0.0, "Smallest best-worst score gap.")
    drop_truncated: bool = key(False, "Ignore candidates cut at max_new_tokens.")
    allow_empty: bool = key(False, "Write an empty output when no pair is made.")


@dataclass
class MergeParams:
    models: list[str] = key([], "Models to merge (SLERP: A then B).")
    method: str = key("slerp", "slerp or linear.")
    t: float | None = key(0.5, "SLERP factor (0: A).")
    weights: list[float] | None = key(None, "Linear weights.")


@dataclass
class EvalMathParams:
    model: str = key("", "The model under test.")
    data: str = key("", "Held-out math records with an `answer` field.")
    max_new_tokens: int = key(512, "Longest answer.")
    backend: str = key("auto", "vllm or hf.")
    tensor_parallel_size: int = key(1, "GPUs per model (vllm).")


@dataclass
class EndpointParams:
    model: str = key("", "Model folder, downloaded hub name, or served name.")
    backend: str = key("auto", "vllm, hf or openai.")
    base_url: str | None = key(None, "OpenAI-compatible server.")
    concurrency: int = key(8, "Requests in flight (openai).")
    tensor_parallel_size: int = key(1, "GPUs per model (vllm).")


@dataclass
class EvalJasterParams:
    data: str = key("", "Jaster data folder (`plamo-fast eval jaster-convert`).")
    model: str = key("", "The model under test.")
    shots: list[int] = key([0], "Few-shot counts.")
    limit: int = key(100, "Items per dataset.")
    chat: bool = key(False, "Ask through the chat template.")
    datasets: list[str] | None = key(None, "Datasets (default: all).")
    backend: str = key("auto", "vllm, hf or openai.")
    tensor_parallel_size: int = key(1, "GPUs per model (vllm).")


@dataclass
class EvalJudgedParams:
    questions: str = key("", "Question file.")
    model: str = key("", "The model under test.")
    judge: EndpointParams = key(EndpointParams(), "The judge.")
    judge_prompts: str | None = key(None, "FastChat judge prompts (JSONL).")
    pair_prompts: str | None = key(None, "Pairwise judge prompts (Rakuda).")
    references: str | None = key(None, "Reference answers (MT-Bench math/reasoning).")
    baseline: str | None = key(None, "Baseline answers for pairwise judging (Rakuda).")
    backend: str = key("auto", "Backend of the model under test.")
    tensor_parallel_size: int = key(1, "GPUs per model (vllm).")
    max_new_tokens: int | None = key(None, "Longest answer (default: the preset's).")
    turns: int = key(2, "Turns judged (1: first turns only).")


@dataclass
class TrainParams:
    """sft and dpo: the keys of one stage of an ``sft``/``dpo`` config (``plamo-fast sft
    --example-config``) except ``name`` and ``output``, plus the run keys (dtype,
    attn_implementation, report_to, plot, peak_tflops). Checked by the train config itself."""

    config: object = None


RUN_KEYS = ("dtype", "attn_implementation", "report_to", "plot", "peak_tflops")


@dataclass(frozen=True)
class Kind:
    name: str
    params: type
    outputs: dict[str, str]  # output key -> path inside the step folder ("output" is the main one)
    inputs: Callable[[object], list[str]]  # the params' input paths (digested)
    needs_torch: bool = False
    resumable: tuple[str, ...] = ()  # files/folders in the step folder a killed run resumes from


def _strip_mixture(spec: str) -> str:
    """``FILE:N`` -> FILE (a pack/train mixture)."""
    from plamo_fast.data.pack import parse_input

    return str(parse_input(spec)[0])


def _train_inputs(params: TrainParams) -> list[str]:
    stage = params.config.stages[0]
    paths = [stage.model, stage.reference_model, stage.data.tokenizer]
    paths += stage.data.packed + [_strip_mixture(s) for s in stage.data.raw]
    return [p for p in paths if p]


def _optional(*values) -> list[str]:
    return [v for v in values if v]


# The outputs of synth_instruct and translate: the records, the rejected ones, the report.
SIDE_FILES = {
    "output": "data.jsonl", "rejected": "data.rejected.jsonl", "report": "data.report.json",
}  # fmt: skip

KINDS: dict[str, Kind] = {
    k.name: k
    for k in [
        Kind(
            "synth_math",
            SynthMathParams,
            {
                "output": "data.jsonl",
                "test": "data.test.jsonl",
                "questions": "data.test.questions.jsonl",
                "references": "data.test.references.jsonl",
            },
            lambda p: [],
        ),  # fmt: skip
        Kind(
            "synth_judge",
            SynthJudgeParams,
            {"output": "data.jsonl"},
            lambda p: [*p.inputs, p.judge_prompts],
        ),
        Kind(
            "synth_instruct",
            SynthInstructParams,
            SIDE_FILES,
            lambda p: (
                _optional(p.model, p.seeds, p.prompts) + [b.rpartition("=")[2] for b in p.benches]
            ),
            True,
            ("data.jsonl.partial", "data.rejected.jsonl.partial", "data.jsonl.state.json"),
        ),
        Kind(
            "translate",
            TranslateParams,
            SIDE_FILES,
            lambda p: [p.input, p.model],
            True,
            (
                "data.jsonl.partial",
                "data.rejected.jsonl.partial",
                "data.jsonl.settings.json",
                "data.cache.jsonl",
            ),
        ),  # fmt: skip
        Kind(
            "dedup",
            DedupParams,
            {"output": "data.jsonl", "report": "report.jsonl"},
            lambda p: list(p.inputs),
        ),  # fmt: skip
        Kind(
            "decontaminate",
            DecontaminateParams,
            {"output": "data.jsonl", "report": "report.jsonl"},
            lambda p: list(p.inputs) + [b.rpartition("=")[2] for b in p.benches],
        ),
        Kind(
            "pack",
            PackParams,
            {"output": "packed"},
            lambda p: [_strip_mixture(s) for s in p.inputs] + _optional(p.tokenizer),
        ),
        Kind("tiny_model", TinyModelParams, {"output": "model"}, lambda p: list(p.corpus)),
        Kind("sft", TrainParams, {"output": "model"}, _train_inputs, True, ("model.run",)),
        Kind("dpo", TrainParams, {"output": "model"}, _train_inputs, True, ("model.run",)),
        Kind(
            "sample",
            SampleParams,
            {"output": "samples.jsonl"},
            lambda p: [p.prompts, p.model],
            True,
            ("samples.jsonl.partial",),
        ),
        Kind(
            "score",
            ScoreParams,
            {"output": "scored.jsonl"},
            lambda p: _optional(p.candidates, p.judge, p.reward_model),
        ),
        Kind(
            "pairs",
            PairsParams,
            {"output": "pairs.jsonl", "report": "report.json"},
            lambda p: _optional(p.scored, p.spin),
        ),
        Kind("merge", MergeParams, {"output": "model"}, lambda p: list(p.models)),
        Kind(
            "eval_math",
            EvalMathParams,
            {"output": "scored.jsonl", "samples": "samples.jsonl"},
            lambda p: [p.model, p.data],
            True,
            ("samples.jsonl.partial",),
        ),
        Kind(
            "eval_jaster",
            EvalJasterParams,
            {"output": "results"},
            lambda p: [p.data, p.model],
            True,
        ),
        Kind(
            "eval_mt_bench",
            EvalJudgedParams,
            {"output": "results"},
            lambda p: _optional(p.questions, p.model, p.judge_prompts, p.references, p.judge.model),
            True,
        ),
        Kind(
            "eval_rakuda",
            EvalJudgedParams,
            {"output": "results"},
            lambda p: _optional(
                p.questions, p.model, p.judge_prompts, p.pair_prompts, p.baseline, p.judge.model
            ),
            True,
        ),
    ]
}

CHOICES = {
    ("synth_math", "lang"): ("ja", "en"),
    ("synth_instruct", "lang"): ("ja", "en"),
    ("synth_instruct", "backend"): ("auto", "hf", "vllm", "openai"),
    ("translate", "to"): ("ja", "en"),
    ("translate", "source_lang"): (None, "ja", "en"),
    ("translate", "backend"): ("auto", "hf", "vllm", "openai"),
    ("dedup", "keep"): ("first", "longest"),
    ("pack", "kind"): ("sft", "dpo"),
    ("pack", "truncate"): ("drop", "left"),
    ("score", "verifier"): (None, "math"),
    ("merge", "method"): ("slerp", "linear"),
    ("sample", "backend"): ("auto", "hf", "vllm", "openai"),
    ("eval_math", "backend"): ("auto", "hf", "vllm"),
}
# Parameters that must be given (no usable default).
REQUIRED = {
    "synth_math": ("n",),
    "synth_judge": ("inputs", "judge_prompts"),
    "synth_instruct": ("model", "n"),
    "translate": ("input", "model"),
    "dedup": ("inputs",),
    "decontaminate": ("inputs", "benches"),
    "pack": ("inputs", "tokenizer"),
    "tiny_model": ("corpus",),
    "sample": ("prompts", "model"),
    "score": ("candidates",),
    "pairs": ("scored",),
    "merge": ("models",),
    "eval_math": ("model", "data"),
    "eval_jaster": ("data", "model"),
    "eval_mt_bench": ("questions", "model", "judge_prompts"),
    "eval_rakuda": ("questions", "model"),
}


def build_params(kind: Kind, raw: dict, where: str, output: Path, problems: list[str]):
    """The typed parameters of a step (``raw`` with every reference already replaced by a
    path); problems are appended as ``WHERE.KEY: ...``."""
    if kind.params is TrainParams:
        return TrainParams(_train_config(kind.name, raw, where, output, problems))
    params = _build(kind.params, raw, where + ".", problems)
    for name in REQUIRED.get(kind.name, ()):
        if not getattr(params, name):
            problems.append(f"{where}.{name}: needed")
    for (kind_name, attr), allowed in CHOICES.items():
        if kind_name == kind.name and getattr(params, attr) not in allowed:
            shown = ", ".join(str(a) for a in allowed if a is not None)
            problems.append(f"{where}.{attr}: {getattr(params, attr)!r} is not one of {shown}")
    _check_values(kind.name, params, where, problems)
    return params


def _check_values(name: str, params, where: str, problems: list[str]) -> None:
    if name == "synth_math" and not 0.0 <= params.holdout < 1.0:
        problems.append(f"{where}.holdout: a fraction in [0, 1)")
    if name == "synth_judge" and not 0.0 <= params.wrong <= 1.0:
        problems.append(f"{where}.wrong: a share in [0, 1]")
    if name == "eval_mt_bench" and params.turns not in (1, 2):
        problems.append(f"{where}.turns: 1 or 2")
    if name in ("sample",) and params.n < 1:
        problems.append(f"{where}.n: must be at least 1")
    if name in ("sample", "eval_math") and params.max_new_tokens < 1:
        problems.append(f"{where}.max_new_tokens: must be at least 1")
    if name == "score" and len(_optional(params.verifier, params.judge, params.reward_model)) != 1:
        problems.append(f"{where}: give exactly one of verifier, judge or reward_model")
    if name == "merge":
        if params.method == "slerp" and (len(params.models) != 2 or params.t is None):
            problems.append(f"{where}: slerp merges two models with t")
        if params.method == "slerp" and params.t is not None and not 0.0 <= params.t <= 1.0:
            problems.append(f"{where}.t: must be in [0, 1]")
    if name in ("dedup", "decontaminate") and (
        len(params.inputs) != 1 or not params.inputs[0].endswith(".jsonl")
    ):
        problems.append(f"{where}.inputs: one JSONL file (one step per file)")
    if name == "pack" and params.max_length < 8:
        problems.append(f"{where}.max_length: must be at least 8")
    if name == "tiny_model" and params.hidden % params.heads:
        problems.append(f"{where}: hidden must be a multiple of heads")


def _train_config(kind: str, raw: dict, where: str, output: Path, problems: list[str]):
    """The one-stage sft/dpo config of a training step, checked by the train config's own
    rules (their messages say ``stages.0.X``; here they say ``WHERE.X``)."""
    from plamo_fast.train.config import RunConfig, _check

    raw = dict(raw)
    if "name" in raw or "output" in raw:
        problems.append(f"{where}: name and output are set by the recipe (the step's folder)")
        raw.pop("name", None)
        raw.pop("output", None)
    run = {k: raw.pop(k) for k in RUN_KEYS if k in raw}
    stage = {**raw, "name": where.rpartition(".")[0].rpartition(".")[2] or kind,
             "output": str(output)}  # fmt: skip
    found: list[str] = []
    config = _build(RunConfig, {"kind": kind, "stages": [stage], **run}, "", found)
    _check(config, found)
    for problem in found:
        problem = problem.replace("stages.0.", f"{where}.")
        if problem.startswith("stages: two stages"):
            continue
        problems.append(problem if problem.startswith(where) else f"{where}.{problem}")
    return config


def params_dict(params) -> dict:
    if isinstance(params, TrainParams):  # the stage's keys and the run keys, as written
        config = dataclasses.asdict(params.config)
        return {**config["stages"][0], **{k: config[k] for k in RUN_KEYS}}
    return dataclasses.asdict(params)


def torch_missing() -> str | None:
    """What the training, sampling and evaluation steps need that is not installed."""
    import importlib.util

    needed = ("torch", "transformers", "accelerate")
    missing = [m for m in needed if not importlib.util.find_spec(m)]
    return ", ".join(missing) or None


def accelerate_command(config_path: Path, kind: str, launcher) -> list[str]:
    """``accelerate launch`` of ``plamo-fast KIND CONFIG`` with the recipe's launcher settings."""
    import sys

    command = [sys.executable, "-m", "accelerate.commands.launch"]
    if launcher.accelerate_config:
        command += ["--config_file", str(launcher.accelerate_config)]
    command += ["--num_processes", str(launcher.processes * launcher.machines)]
    if launcher.machines > 1:
        command += ["--num_machines", str(launcher.machines)]
    return command + ["-m", "plamo_fast.cli", kind, str(config_path)]


def environ_without_launch() -> dict:
    """The environment for a child process (no inherited distributed-launch variables)."""
    skip = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    return {k: v for k, v in os.environ.items() if k not in skip}
