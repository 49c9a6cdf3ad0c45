"""``plamo-fast synth``: training data made by the package itself (``math``: template math;
``instruct``: Self-Instruct with titles, questions and answers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from plamo_fast.cli.options import (
    API_KEY,
    BACKEND,
    BASE_URL,
    CONCURRENCY,
    OVERWRITE,
    QUIET,
    RETRIES,
    TENSOR_PARALLEL,
    TIMEOUT,
    fleet_url,
)

app = typer.Typer(
    name="synth",
    help="Synthesize training data: template math problems with worked Japanese solutions; "
    "instructions with answers written by a model (Self-Instruct); grading exercises for a "
    "small judge.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


@app.command("math", no_args_is_help=True)
def math(
    n: int = typer.Option(..., "-n", help="Number of problems (train and holdout together)."),
    output: Path = typer.Option(..., "--output", "-o", help="Output JSONL file."),
    seed: int = typer.Option(0, help="Seed of the one RNG: same options and seed, same file."),
    lang: str = typer.Option("ja", help="ja or en: the language of problems and solutions."),
    mix: Optional[str] = typer.Option(
        None,
        help="Weights per family or generator, e.g. arithmetic=3,fractions=2,systems.two=1; "
        "a family's weight is shared by its generators; unnamed ones get 0. Default: all "
        "generators equally (see `plamo-fast synth list`).",
    ),
    difficulty: Optional[str] = typer.Option(
        None, help="easy, medium, hard, or several comma-separated (default: all three)."
    ),
    feature: List[str] = typer.Option(
        [],
        "--feature",
        help="KEY=VALUE: only generators with this feature, with it fixed (e.g. carries=all, "
        "eliminate=y, reduces=no). Repeatable.",
    ),
    holdout: float = typer.Option(
        0.0,
        help="Fraction of problems (by id hash) written to OUT-stem.test.jsonl instead; train "
        "and test never share an id.",
    ),
    overwrite: bool = typer.Option(False, help="Replace existing output files."),
) -> None:
    """N distinct template math problems (dedup on the problem's parameters), each with a worked
    solution ending in `答え: \\boxed{ANSWER}` and the exact `answer` field, ready for `pack`
    (messages) and for `sample` / `score --verifier math`."""
    from plamo_fast.synth.run import synth_math

    summary = synth_math(
        output,
        n,
        seed=seed,
        lang=lang,
        mix=mix,
        difficulty=difficulty,
        features=feature,
        holdout=holdout,
        overwrite=overwrite,
    )
    typer.echo(json.dumps(summary, ensure_ascii=False), err=True)
    typer.echo(str(output))


@app.command("judge", no_args_is_help=True)
def judge(
    inputs: List[Path] = typer.Argument(
        ..., help="Records with a question, a worked solution and `answer` (`synth math`'s)."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Output JSONL of conversations."),
    judge_prompts: Path = typer.Option(
        ...,
        help="FastChat judge prompt file with a reference-guided `single-math-v1` prompt (the "
        "one `eval mt-bench --judge-prompts` will use, so the judge is trained on its prompts).",
    ),
    n: Optional[int] = typer.Option(None, "-n", help="Exercises to write (default: all)."),
    wrong: float = typer.Option(0.5, help="Share of exercises given a wrong final answer."),
    seed: int = typer.Option(0, help="Seed of the wrong answers (with each record's id)."),
    skip_bad: bool = typer.Option(False, help="Count and skip unusable records."),
    allow_empty: bool = typer.Option(
        False, help="Write the output even when no exercise is made (else an error)."
    ),
    overwrite: bool = typer.Option(False, help="Replace an existing output."),
) -> None:
    """Grading exercises for a small judge, labelled by the verifier: each record's solution,
    right or with a near-miss final answer, in the judge prompt `eval mt-bench` sends, and the
    judge's reply (the two answers, same or different, `Rating: [[10]]` or `[[1]]`). Train a
    model on them (`sft`), then use it as `--judge` for reference-guided grading."""
    from plamo_fast.synth.judge import synth_judge

    summary = synth_judge(
        inputs, output, judge_prompts, wrong=wrong, seed=seed, limit=n, skip_bad=skip_bad,
        allow_empty=allow_empty, overwrite=overwrite,
    )  # fmt: skip
    typer.echo(json.dumps(summary, ensure_ascii=False), err=True)
    typer.echo(str(output))


@app.command("list")
def list_generators() -> None:
    """The math generators: name, controllable features and what each makes."""
    from plamo_fast.synth.registry import load_all

    for name, gen in sorted(load_all().items()):
        features = " ".join(f"{k}={'|'.join(v)}" for k, v in gen.features.items())
        typer.echo(
            f"{name:24} v{gen.version}  {gen.summary}" + (f"  [{features}]" if features else "")
        )


@app.command("instruct", no_args_is_help=True)
def instruct(
    model: str = typer.Option(
        ...,
        "--model",
        help="hf, vllm: a model folder, or a hub name already downloaded (never downloaded "
        "here). openai: the served name. Recorded as each record's `generator`.",
    ),
    n: int = typer.Option(..., "-n", help="Records to keep (the run stops at exactly N)."),
    output: Path = typer.Option(
        ...,
        "--output",
        "-o",
        help="Output JSONL; beside it OUT-stem.rejected.jsonl (every rejected candidate with "
        "its reason) and OUT-stem.report.json (counts per step and reason).",
    ),
    seeds: Optional[Path] = typer.Option(
        None,
        help="Seed tasks: JSONL in Self-Instruct's layout (instruction, instances, "
        "is_classification; e.g. its seed_tasks.jsonl), instruction records or conversations. "
        "Default: the ~40 Japanese seed tasks shipped with plamo-fast (for --lang ja).",
    ),
    lang: str = typer.Option("ja", help="ja or en: the prompts and the language filter."),
    prompts: Optional[Path] = typer.Option(
        None,
        help="YAML or JSON file with templates `titles` ({examples}, {count}), `question` "
        "({title}; optional {examples}) and `answer` ({question}; optional {title}) in place "
        "of the --lang defaults. Their hash is each record's `prompt_version`.",
    ),
    bench: List[str] = typer.Option(
        [],
        "--bench",
        help="Benchmark file or folder, as `plamo-fast decontaminate` takes them (NAME=PATH "
        "names it): a question reproducing one of its items is rejected. Repeatable.",
    ),
    bench_field: Optional[str] = typer.Option(
        None, help="Question field of benchmark JSONL files in other formats."
    ),
    seed: int = typer.Option(
        0, help="Seed of every draw and request: same seed, same output (deterministic backend)."
    ),
    seed_examples: int = typer.Option(6, help="Seed tasks shown in each titles request."),
    machine_examples: int = typer.Option(
        2, help="Kept machine-written tasks shown besides them (at most)."
    ),
    requests: int = typer.Option(4, help="Titles requests per round."),
    titles: int = typer.Option(8, help="Titles asked for in each request."),
    patience: int = typer.Option(
        20, help="Rounds in a row that keep nothing before the run stops with what it has."
    ),
    novelty: float = typer.Option(
        0.7,
        help="ROUGE-L F1 above which a question (or title) is too close to a kept one, seeds "
        "included (characters for Japanese, words for English).",
    ),
    min_question_chars: int = typer.Option(8),
    max_question_chars: int = typer.Option(2000),
    min_answer_chars: int = typer.Option(2),
    max_answer_chars: int = typer.Option(10000),
    max_title_chars: int = typer.Option(80),
    min_question_share: float = typer.Option(
        0.5,
        help="Least share of the --lang script (ja: kana and kanji; en: Latin) among the "
        "letters of a question, code left out (its first line counts when higher: an "
        "instruction to translate English text).",
    ),
    min_answer_share: float = typer.Option(
        0.2, help="The same for answers (lower: an answer may quote or translate)."
    ),
    blacklist: Optional[Path] = typer.Option(
        None,
        help="Keywords that reject a title or question (default: image, graph, file, map, "
        "draw, plot, 画像, 図, グラフ, ファイル, 写真, 地図, 描いて, ...): one a line, !WORD an "
        "exception (意図 for 図), # a comment; an empty file turns the filter off.",
    ),
    backend: str = BACKEND,
    base_url: Optional[List[str]] = BASE_URL,
    api_key: Optional[str] = API_KEY,
    concurrency: int = CONCURRENCY,
    tensor_parallel_size: int = TENSOR_PARALLEL,
    timeout: float = TIMEOUT,
    retries: int = RETRIES,
    temperature: float = typer.Option(0.7),
    top_p: float = typer.Option(1.0),
    max_new_tokens: int = typer.Option(
        1024, help="Per reply; a reply cut there is rejected (a cut titles list loses its last)."
    ),
    skip_bad: bool = typer.Option(False, help="Skip malformed seed records (counted)."),
    allow_empty: bool = typer.Option(
        False, help="Write the output even when no record is kept (else an error)."
    ),
    overwrite: bool = OVERWRITE,
    quiet: bool = QUIET,
) -> None:
    """Self-Instruct, PLaMo's variant: from sampled seed tasks the model writes short titles,
    then one question per title, then its answer; candidates failing a filter (truncation,
    length, blacklist, language, benchmark leak, ROUGE-L novelty) are counted and set aside. A
    killed run continues where it stopped."""
    from plamo_fast.generation.backends import SamplingOptions
    from plamo_fast.synth.instruct.filters import FilterConfig, load_blacklist
    from plamo_fast.synth.instruct.report import summary_line
    from plamo_fast.synth.instruct.run import EngineOptions, Plan, synth_instruct

    sampling = SamplingOptions(
        n=1, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed
    )
    result = synth_instruct(
        output,
        model,
        Plan(n, seed, seed_examples, machine_examples, requests, titles, patience),
        seeds=seeds,
        lang=lang,
        prompts_file=prompts,
        filters=FilterConfig(
            min_question_chars=min_question_chars,
            max_question_chars=max_question_chars,
            min_answer_chars=min_answer_chars,
            max_answer_chars=max_answer_chars,
            max_title_chars=max_title_chars,
            min_question_share=min_question_share,
            min_answer_share=min_answer_share,
            novelty=novelty,
            blacklist=load_blacklist(blacklist),
        ),
        bench=bench,
        bench_field=bench_field,
        engine=EngineOptions(
            backend=backend,
            base_url=fleet_url(base_url),
            api_key=api_key,
            concurrency=concurrency,
            tensor_parallel_size=tensor_parallel_size,
            timeout=timeout,
            retries=retries,
            sampling=sampling,
        ),
        skip_bad=skip_bad,
        overwrite=overwrite,
        progress=not quiet,
        allow_empty=allow_empty,
    )
    typer.echo(summary_line(result), err=True)
    typer.echo(str(output))
