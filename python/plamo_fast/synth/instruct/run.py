"""The run loop of ``synth instruct``: rounds until ``-n`` records are kept.

A round (everything in it seeded by ``--seed`` and the round's number, so a resumed run does
the same rounds as an uninterrupted one):

1. ``--requests`` titles requests, each showing ``--seed-examples`` seed tasks and up to
   ``--machine-examples`` kept machine-written ones (drawn from what is kept when the round
   starts), asking for ``--titles`` new titles. Each title parsed is checked: length, the
   blacklist, exact duplicates (after :func:`~plamo_fast.synth.instruct.steps.normalize_title`)
   and ROUGE-L novelty against the seed and kept titles and the titles of the round before it.
2. One question per title, checked by the filters of :mod:`plamo_fast.synth.instruct.filters`
   (novelty against the seed tasks, the kept questions and the round's earlier ones).
3. One answer per question, checked; a record is kept when its answer passes. Once ``-n``
   records are kept, the round's remaining questions are left unanswered (``surplus``).

A round that keeps nothing counts towards ``--patience``; that many in a row end the run
early with what is kept (a warning says so). Everything rejected goes to the rejected file
with its step, reason and details.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from hashlib import blake2b
from pathlib import Path
from random import Random

from plamo_fast._progress import progress_bar
from plamo_fast.data.accounting import check_kept
from plamo_fast.data.benchmarks import split_spec
from plamo_fast.errors import UsageError
from plamo_fast.generation.backends import Backend, SamplingOptions, check_backend, load_backend
from plamo_fast.synth.instruct import filters as flt
from plamo_fast.synth.instruct import report as rpt
from plamo_fast.synth.instruct import steps
from plamo_fast.synth.instruct.prompts import Prompts, load_prompts
from plamo_fast.synth.instruct.seeds import SeedSet, Task, read_seeds
from plamo_fast.synth.instruct.store import COMMAND, RoundStore
from plamo_fast.synth.novelty import NoveltyFilter

NEAREST_SHOWN = 200  # characters of the nearest kept text in a novelty rejection


@dataclass(frozen=True)
class Plan:
    """How the rounds are made (all but ``n`` and ``patience`` shape the output)."""

    n: int
    seed: int = 0
    seed_examples: int = 6
    machine_examples: int = 2
    requests: int = 4
    titles: int = 8
    patience: int = 20

    def check(self) -> None:
        for name in ("n", "seed_examples", "requests", "titles", "patience"):
            if getattr(self, name) < 1:
                option = "-n" if name == "n" else "--" + name.replace("_", "-")
                raise UsageError(f"{option} must be at least 1")
        if self.machine_examples < 0:
            raise UsageError("--machine-examples must be at least 0")

    def settings(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in ("n", "patience")}


@dataclass
class EngineOptions:
    """How to reach the model (``load_backend``'s options, as ``plamo-fast sample`` takes
    them)."""

    backend: str = "auto"
    base_url: str | None = None
    api_key: str | None = None
    concurrency: int = 8
    tensor_parallel_size: int = 1
    timeout: float = 600.0
    retries: int = 4
    sampling: SamplingOptions = field(
        default_factory=lambda: SamplingOptions(n=1, temperature=0.7, max_new_tokens=1024)
    )


@dataclass
class RoundOutput:
    kept: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)


class Synthesizer:
    """The state of a run between rounds: the seed tasks, the kept records and the novelty
    pools built from both (rebuilt the same way from disk when a run resumes)."""

    def __init__(self, model: str, backend: str, seeds: SeedSet, prompts: Prompts, plan: Plan,
                 filters: flt.FilterConfig, leak: flt.LeakFilter | None,
                 sampling: SamplingOptions):  # fmt: skip
        self.model, self.backend, self.seeds, self.prompts = model, backend, seeds, prompts
        self.plan, self.filters, self.leak, self.sampling = plan, filters, leak, sampling
        self.kept: list[Task] = []
        self.questions = Pool(filters.novelty)
        self.titles = Pool(filters.novelty)
        self.title_forms: set[str] = set()
        for task in seeds.tasks:
            self.questions.add(task.instruction)
            self._add_title(task.title)

    def _add_title(self, title: str) -> None:
        self.titles.add(title)
        self.title_forms.add(steps.normalize_title(title))

    def restore(self, records: list[dict]) -> None:
        """The kept records of a resumed run, in the order they were kept."""
        for record in records:
            self._keep(record["title"], record["messages"][0]["content"])

    def _keep(self, title: str, question: str) -> None:
        self.kept.append(Task(title, question))
        self.questions.add(question)
        self._add_title(title)

    def round(self, index: int, needed: int, engine: Backend) -> RoundOutput:
        """Round ``index`` (see the module text), keeping at most ``needed`` records."""
        rng = Random(f"synth-instruct/{self.plan.seed}/{index}")
        out = RoundOutput()
        shown = [self._examples(rng) for _ in range(self.plan.requests)]
        prompts = [steps.titles_prompt(self.prompts, ex, self.plan.titles) for ex in shown]
        replies = self._ask(engine, "titles", index, prompts, range(len(prompts)))
        titles = self._titles(index, replies, shown, out)
        questions = self._questions(index, engine, titles, out)
        self._answers(index, engine, questions, needed, out)
        return out

    def _examples(self, rng: Random) -> list[Task]:
        tasks = rng.sample(self.seeds.tasks, min(self.plan.seed_examples, len(self.seeds.tasks)))
        machine = min(self.plan.machine_examples, len(self.kept))
        return tasks + rng.sample(self.kept, machine)

    def _ask(self, engine: Backend, stage: str, index: int, texts: list[str], numbers) -> list:
        keys = [steps.request_key(index, stage, k) for k in numbers]
        conversations = [[{"role": "user", "content": t}] for t in texts]
        return [c[0] for c in engine.generate(conversations, self.sampling, keys)]

    def _titles(self, index, replies, shown, out: RoundOutput) -> list[tuple[str, list[Task]]]:
        """The round's new titles, each with the examples its question prompt shows."""
        counts = out.counts
        counts["titles.requests"] += len(replies)
        in_round = Pool(self.filters.novelty)
        forms: set[str] = set()
        chosen = []
        for reply, examples in zip(replies, shown, strict=True):
            items = steps.parse_titles(reply["text"])
            if not items:
                self._reject(out, index, "titles", "no_titles", {}, reply=reply["text"])
                continue
            counts["titles.parsed"] += len(items)
            for k, title in enumerate(items):
                last_cut = k == len(items) - 1 and reply["finish_reason"] == "length"
                why = ("truncated", {}) if last_cut else self._title_problem(title, forms, in_round)
                if why:
                    self._reject(out, index, "titles", *why, title=title)
                    continue
                counts["titles.asked"] += 1
                forms.add(steps.normalize_title(title))
                in_round.add(title)
                chosen.append((title, examples[:2]))
        return chosen

    def _title_problem(self, title: str, forms: set[str], in_round) -> flt.Rejection | None:
        found = flt.length(title, 1, self.filters.max_title_chars) or flt.blacklisted(
            title, self.filters.blacklist
        )
        if found:
            return found
        form = steps.normalize_title(title)
        if form in self.title_forms or form in forms:
            return "duplicate", {}
        return self.titles.check(title) or in_round.check(title)

    def _questions(self, index, engine, titles, out: RoundOutput) -> list[tuple[int, str, str]]:
        """``(number, title, question)`` of the questions that pass."""
        prompts = [steps.question_prompt(self.prompts, t, ex) for t, ex in titles]
        replies = self._ask(engine, "question", index, prompts, range(len(prompts)))
        out.counts["questions.asked"] += len(replies)
        texts = [steps.clean_question(r["text"]) for r in replies]
        leaks = self.leak.check_all(texts) if self.leak else [None] * len(texts)
        in_round = Pool(self.filters.novelty)
        passed = []
        for k, ((title, _), reply, question, leak) in enumerate(
            zip(titles, replies, texts, leaks, strict=True)
        ):
            f = self.filters
            why = (
                flt.truncated(reply["finish_reason"])
                or flt.length(question, f.min_question_chars, f.max_question_chars)
                or flt.blacklisted(question, f.blacklist)
                or flt.language(question, self.prompts.lang, f.min_question_share, by_line=True)
                or leak
                or self.questions.check(question)
                or in_round.check(question)
            )
            if why:
                self._reject(out, index, "questions", *why, title=title, question=question)
                continue
            in_round.add(question)
            passed.append((k, title, question))
        return passed

    def _answers(self, index, engine, questions, needed: int, out: RoundOutput) -> None:
        """Answers the questions in order, no more than it takes to keep ``needed``."""
        pending = list(questions)
        while pending and len(out.kept) < needed:
            batch, pending = pending[: needed - len(out.kept)], pending[needed - len(out.kept) :]
            prompts = [steps.answer_prompt(self.prompts, t, q) for _, t, q in batch]
            replies = self._ask(engine, "answer", index, prompts, [k for k, _, _ in batch])
            out.counts["questions.answered"] += len(batch)
            out.counts["answers.asked"] += len(batch)
            for (_, title, question), reply in zip(batch, replies, strict=True):
                self._judge_answer(index, title, question, reply, out)
        for _, title, question in pending:
            self._reject(out, index, "questions", "surplus", {}, title=title, question=question)

    def _judge_answer(self, index, title, question, reply, out: RoundOutput) -> None:
        answer, f = reply["text"].strip(), self.filters
        why = (
            flt.truncated(reply["finish_reason"])
            or flt.length(answer, f.min_answer_chars, f.max_answer_chars)
            or flt.language(answer, self.prompts.lang, f.min_answer_share)
        )
        if why:
            fields = {"title": title, "question": question, "answer": answer}
            self._reject(out, index, "answers", *why, **fields)
            return
        out.counts["answers.kept"] += 1
        out.kept.append(self._record(title, question, answer))
        self._keep(title, question)

    def _record(self, title: str, question: str, answer: str) -> dict:
        digest = blake2b(f"{question}\0{answer}".encode(), digest_size=8).hexdigest()
        return {
            "id": f"si-{digest}",
            "messages": [
                {"role": "user", "content": question},
                {"role": "assistant", "content": answer},
            ],
            "title": title,
            "lang": self.prompts.lang,
            "synth": "instruct",
            "generator": self.model,
            "backend": self.backend,
            "seed_file": self.seeds.provenance,
            "prompt_version": self.prompts.version,
        }

    @staticmethod
    def _reject(out: RoundOutput, index: int, step: str, reason: str, details: dict,
                **texts: str) -> None:  # fmt: skip
        out.counts[f"{step}.{reason}"] += 1
        out.rejected.append(
            {"round": index, "step": step, "reason": reason, "details": details, **texts}
        )


class Pool:
    """A :class:`NoveltyFilter` whose rejections name the nearest pool text."""

    def __init__(self, threshold: float):
        self.filter = NoveltyFilter(threshold=threshold, unit="auto")

    def add(self, text: str) -> None:
        self.filter.add(text)

    def check(self, text: str) -> flt.Rejection | None:
        """A ``novelty`` rejection (ROUGE-L and the nearest text), or None for a novel text."""
        novel, best, nearest = self.filter.check(text)
        if novel:
            return None
        shown = self.filter.text(nearest)[:NEAREST_SHOWN] if nearest >= 0 else None
        return "novelty", {"rouge_l": round(float(best), 4), "nearest": shown}


def synth_instruct(
    output: Path,
    model: str,
    plan: Plan,
    *,
    seeds: Path | None = None,
    lang: str = "ja",
    prompts_file: Path | None = None,
    filters: flt.FilterConfig | None = None,
    bench: list[str] | None = None,
    bench_field: str | None = None,
    engine: EngineOptions | None = None,
    skip_bad: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    allow_empty: bool = False,
) -> dict:
    """Writes ``plan.n`` instruction records to ``output`` (see the module text); returns the
    report."""
    plan.check()
    filters = filters or flt.FilterConfig()
    filters.check()
    engine = engine or EngineOptions()
    if engine.sampling.n != 1:
        raise UsageError("synth instruct asks for one candidate per request")
    prompts = load_prompts(lang, prompts_file)
    if seeds is None and lang != "ja":
        raise UsageError(f"--lang {lang} needs --seeds (the shipped seed tasks are Japanese)")
    backend, _ = check_backend(engine.backend, model, engine.base_url)
    seed_set = read_seeds(seeds, skip_bad)
    leak = flt.LeakFilter(list(bench), bench_field) if bench else None
    settings = {
        "model": model, "backend": backend, "lang": lang, "seed_file": seed_set.provenance,
        "prompt_version": prompts.version, "sampling": asdict(engine.sampling),
        "filters": filters.settings(), "bench": sorted(bench or []), **plan.settings(),
    }  # fmt: skip
    inputs = [p for p in (seeds, prompts_file) if p is not None]
    inputs += [split_spec(spec)[1] for spec in bench or []]
    store = RoundStore(Path(output), settings, inputs=inputs, overwrite=overwrite)
    try:
        gen = Synthesizer(model, backend, seed_set, prompts, plan, filters, leak, engine.sampling)
        gen.restore(store.kept_records())
        stopped = _rounds(gen, store, plan, engine, progress)
        counts = Counter(store.state["counts"])
        kept = store.state["kept"]
        if kept == 0:  # rejections are the rule here: no warning for a high share, only this
            candidates = counts["titles.parsed"] + counts["titles.no_titles"]
            check_kept(COMMAND, candidates, kept, rpt.rejections(counts), allow_empty,
                       hint=stopped, unit="candidates")  # fmt: skip
        result = _report(store, plan, counts, kept, stopped, seed_set, prompts, leak, settings)
        store.finish(result)
    finally:
        store.close()
    if stopped:
        sys.stderr.write(f"plamo-fast {COMMAND}: warning: {stopped}\n")
    return result


def _rounds(gen: Synthesizer, store: RoundStore, plan: Plan, options: EngineOptions,
            progress: bool) -> str | None:  # fmt: skip
    """Runs rounds until ``plan.n`` records are kept (None) or ``--patience`` rounds in a row
    keep nothing (the reason, as text)."""
    state = store.state
    if state["kept"] > plan.n:
        raise UsageError(
            f"{store.kept_partial} already holds {state['kept']} records, more than -n "
            f"{plan.n}; resume with -n {state['kept']} or more, or pass --overwrite"
        )
    if state["kept"] == plan.n:
        return None
    engine = load_backend(
        options.backend, gen.model, base_url=options.base_url, api_key=options.api_key,
        tensor_parallel_size=options.tensor_parallel_size, concurrency=options.concurrency,
        timeout=options.timeout, retries=options.retries,
    )  # fmt: skip
    update, stop = progress_bar(COMMAND, plan.n, transfer=False, show=progress)
    counts = Counter(state["counts"])
    started = time.perf_counter()
    try:
        update(state["kept"])
        while state["kept"] < plan.n:
            if state["stale"] >= plan.patience:
                return (
                    f"{state['stale']} rounds in a row kept nothing (--patience); kept "
                    f"{state['kept']} of {plan.n}"
                )
            out = gen.round(state["rounds"], plan.n - state["kept"], engine)
            counts.update(out.counts)
            store.commit(
                out.kept,
                out.rejected,
                rounds=state["rounds"] + 1,
                kept=state["kept"] + len(out.kept),
                stale=0 if out.kept else state["stale"] + 1,
                counts=dict(sorted(counts.items())),
            )
            rejected = sum(rpt.rejections(counts).values())
            elapsed = time.perf_counter() - started
            note = f"round {state['rounds']}, rejected {rejected:,}, {elapsed:,.0f} s"
            update(state["kept"], " ".join(filter(None, [note, engine.progress_note()])))
    finally:
        stop()
    return None


def _report(store: RoundStore, plan: Plan, counts: Counter, kept: int, stopped: str | None,
            seeds: SeedSet, prompts: Prompts, leak, settings: dict) -> dict:  # fmt: skip
    by_reason = rpt.rejections(counts)
    return {
        "output": str(store.out),
        "rejected_file": str(store.rejected),
        "report": str(store.report),
        "n": plan.n,
        "kept": kept,
        "complete": stopped is None,
        "stopped": stopped,
        "rounds": store.state["rounds"],
        "rejected": sum(by_reason.values()),
        "rejected_by_reason": by_reason,
        "counts": rpt.nested(counts),
        "seed_tasks": len(seeds.tasks),
        "seed_records_skipped": len(seeds.bad),
        "prompt_version": prompts.version,
        "prompts": prompts.source,
        "benchmark_items": len(leak.items) if leak else 0,
        "benchmark_files": [str(f) for f in leak.benchmarks.files] if leak else [],
        "settings": settings,
    }
