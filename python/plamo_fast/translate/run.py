"""The ``translate`` run: records read (:func:`plamo_fast.data.curation_io.iter_input`), their
text fields (:mod:`.fields`) split into chunks (:mod:`.chunking`), each chunk that has words to
translate sent once (:mod:`.cache`) through any backend
(:func:`plamo_fast.generation.backends.load_backend`), checked (:mod:`.filters`), restored and
joined; the record is written translated with its provenance, or rejected with the reason and
the field. Records go in batches of about the backend's batch size in requests, and are written
in input order, so a resumed run (:mod:`.store`) ends with the file an uninterrupted run
writes."""

from __future__ import annotations

import copy
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from plamo_fast._progress import progress_bar
from plamo_fast.data.accounting import check_kept
from plamo_fast.data.conversation import BadRecordError
from plamo_fast.data.curation_io import check_input, iter_input, where
from plamo_fast.errors import UsageError
from plamo_fast.generation.backends import SamplingOptions, check_backend, load_backend
from plamo_fast.outputs import check_output
from plamo_fast.translate import fields, filters, report
from plamo_fast.translate.cache import Cache, cache_key
from plamo_fast.translate.chunking import Split, split_text
from plamo_fast.translate.prompts import Prompt, check_lang, load_prompt
from plamo_fast.translate.store import COMMAND, Store, side_paths

# Fields a translated record gets; an input record holding one is refused (not overwritten).
PROVENANCE = ("translated_by", "translated_from", "translated_to", "translation_prompt_version",
              "source_index")  # fmt: skip


@dataclass
class Settings:
    """What decides the output (a resumed run must have the same)."""

    model: str
    to: str = "ja"
    source_lang: str | None = None
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 1024
    seed: int = 0
    max_chunk_chars: int = 2000
    system: bool = True
    filters: filters.FilterConfig = field(default_factory=filters.FilterConfig)


@dataclass
class Item:
    """One input record and, as the run goes, its translation or rejection."""

    index: int
    record: dict | None
    paths: list
    error: str | None = None
    raw: str | None = None  # the line of a record that could not be parsed
    splits: dict = field(default_factory=dict)  # path -> Split
    outputs: dict = field(default_factory=dict)  # path -> [masked output per chunk]
    rejection: tuple | None = None  # (reason, path, details, text)


class Translator:
    """Sends chunks through the cache and the backend (loaded at the first cache miss)."""

    def __init__(self, settings: Settings, cache: Cache, load):
        self.settings, self.cache, self.load = settings, cache, load
        self.engine = None
        self.requests = self.cached = 0

    def options(self) -> SamplingOptions:
        s = self.settings
        return SamplingOptions(n=1, temperature=s.temperature, top_p=s.top_p,
                               max_new_tokens=s.max_new_tokens, seed=s.seed)  # fmt: skip

    def key(self, prompt: Prompt, masked: str) -> str:
        options = asdict(self.options())
        return cache_key(masked, {"model": self.settings.model, "prompt": prompt.template,
                                  "to": prompt.target, **options})  # fmt: skip

    def run(self, prompt: Prompt, texts: list[str]) -> list[tuple[str, str]]:
        """``(output, finish_reason)`` for each masked text, in order."""
        keys = [self.key(prompt, t) for t in texts]
        missing: dict[str, str] = {}
        for k, t in zip(keys, texts, strict=True):
            if self.cache.get(k) is None and k not in missing:
                missing[k] = t
        self.cached += len(texts) - len(missing)
        if missing:
            if self.engine is None:
                self.engine = self.load()
            todo = list(missing.items())
            for start in range(0, len(todo), self.engine.batch_size):
                part = todo[start : start + self.engine.batch_size]
                conversations = [[{"role": "user", "content": prompt.render(t)}] for _, t in part]
                seeds = [int(k[:8], 16) for k, _ in part]  # stable across runs and batches
                outs = self.engine.generate(conversations, self.options(), keys=seeds)
                self.requests += len(part)
                for (k, _), (candidate,) in zip(part, outs, strict=True):
                    self.cache.put(k, candidate["text"].strip(), candidate["finish_reason"])
        return [self.cache.get(k) for k in keys]


def translate(
    input_path: Path,
    model: str,
    output: Path,
    *,
    to: str = "ja",
    source_lang: str | None = None,
    backend: str = "auto",
    base_url: str | None = None,
    api_key: str | None = None,
    concurrency: int = 8,
    tensor_parallel_size: int = 1,
    timeout: float = 600.0,
    retries: int = 4,
    temperature: float = 0.0,
    top_p: float = 1.0,
    max_new_tokens: int = 1024,
    seed: int = 0,
    max_chunk_chars: int = 2000,
    prompt_path: Path | None = None,
    system: bool = True,
    filter_config: filters.FilterConfig | None = None,
    cache_path: Path | None = None,
    skip_bad: bool = False,
    allow_empty: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
) -> dict:
    """Translate ``input_path`` into ``output`` (see the module text); returns the report.
    ``stop_after`` records ends early without finishing (the tests' stand-in for a kill)."""
    _check_languages(to, source_lang)
    if max_chunk_chars < 1:
        raise UsageError("--max-chunk-chars must be at least 1")
    config = (filter_config or filters.FilterConfig()).check()
    settings = Settings(model, to, source_lang, temperature, top_p, max_new_tokens, seed,
                        max_chunk_chars, system, config)  # fmt: skip
    prompt = load_prompt(prompt_path, to, source_lang)
    back_lang = source_lang or ("en" if to == "ja" else "ja")
    back_prompt = load_prompt(None, back_lang, to)
    input_path = check_input(input_path)
    check_backend(backend, model, base_url)  # fails before anything is written
    items = read_items(input_path, system, skip_bad)
    good = sum(item.error is None for item in items)
    if not good:
        bad = Counter({"bad_record": len(items)})
        check_kept(COMMAND, len(items), 0, bad, allow_empty)
    cache_path = _cache_path(cache_path, Path(output), input_path)
    meta = {**asdict(settings), "prompt_version": prompt.version, "backend": backend}
    store = Store(Path(output), meta, inputs=[input_path], overwrite=overwrite)
    cache = Cache(cache_path)

    def load():
        return load_backend(backend, model, base_url=base_url, api_key=api_key,
                            tensor_parallel_size=tensor_parallel_size, concurrency=concurrency,
                            timeout=timeout, retries=retries)  # fmt: skip

    translator = Translator(settings, cache, load)
    todo = [item for item in items if item.index not in store.done]
    update, stop = progress_bar("translate", len(todo), transfer=False, show=progress)
    started = time.perf_counter()
    try:
        written, chunks = 0, 0
        for batch in batches(todo, settings, budget=_budget(backend, concurrency)):
            chunks += translate_batch(batch, settings, prompt, back_prompt, translator)
            for item in batch:
                store.write(*outcome(item, settings, prompt))
                written += 1
                if stop_after is not None and written >= stop_after:
                    return {"finished": False, "written": written}
            update(written, f"{translator.requests:,} requests, {translator.cached:,} cached")
        this_run = {
            "records": written,
            "already_done": len(store.done),
            "chunks": chunks,
            "requests": translator.requests,
            "cached": translator.cached,
            "seconds": round(time.perf_counter() - started, 2),
        }
        check_kept(COMMAND, len(items), store.kept, store.reasons, allow_empty)
        result = report.build(
            read=len(items),
            kept=store.kept,
            reasons=store.reasons,
            this_run=this_run,
            settings=meta,
            paths={
                "input": input_path,
                "output": output,
                "rejected_file": store.rejected,
                "report": store.report,
                "cache": cache_path,
            },  # fmt: skip
        )
        store.finish(result)
    finally:
        stop()
        store.close()
        cache.close()
    sys.stderr.write(report.line(result) + "\n")
    return result


def _check_languages(to: str, source_lang: str | None) -> None:
    check_lang(to, "--to")
    if source_lang is not None:
        check_lang(source_lang, "--from")
        if source_lang == to:
            raise UsageError(f"--from and --to are both {to}: nothing to translate")


def _cache_path(given: Path | None, out: Path, input_path) -> Path:
    """``--cache``, or ``OUT-stem.cache.jsonl``; never an input or another output."""
    path = Path(given) if given else side_paths(out)[2]
    check_output(path, command=COMMAND, inputs=[input_path], overwrite=True, folder=False)
    if path.resolve() in {p.resolve() for p in (out, *side_paths(out)[:2])}:
        raise UsageError(f"--cache {path} is one of the outputs; name another file")
    return path


def _budget(backend: str, concurrency: int) -> int:
    """Requests a batch of records should hold to keep the backend busy."""
    return 256 if backend == "vllm" else max(1, concurrency) * 4


def read_items(path, system: bool, skip_bad: bool) -> list[Item]:
    items = []
    for index, row in enumerate(iter_input(path)):
        try:
            if row.error is not None:
                raise BadRecordError(row.error)
            paths = fields.text_paths(row.record, system)
            clash = [k for k in PROVENANCE if k in row.record]
            if clash:
                raise BadRecordError(f"field {clash[0]!r} is one translate writes; rename it")
            items.append(Item(index, row.record, paths))
        except BadRecordError as exc:
            message = f"{where(path, row)}: {exc}"
            if not skip_bad:
                raise BadRecordError(message + " (pass --skip-bad to skip it)") from None
            raw = row.raw.decode("utf-8", "replace").rstrip("\n") if row.raw else None
            items.append(Item(index, row.record, [], error=message, raw=raw))
    return items


def batches(items: list[Item], settings: Settings, budget: int):
    """Items in order, their texts split, in groups of about ``budget`` chunks."""
    group, size = [], 0
    for item in items:
        if item.error is None:
            for path in item.paths:
                text = fields.get(item.record, path)
                item.splits[path] = split_text(text, settings.max_chunk_chars)
                size += len(item.splits[path].chunks)
        group.append(item)
        if size >= budget:
            yield group
            group, size = [], 0
    if group:
        yield group


def translate_batch(batch, settings: Settings, prompt: Prompt, back: Prompt, translator) -> int:
    """Fills each item's outputs (and rejection); returns the chunks translated."""
    wanted = [(item, path, i, chunk) for item in batch if item.error is None
              for path, split in item.splits.items() for i, chunk in enumerate(split.chunks)
              if chunk.needs_model]  # fmt: skip
    answers = translator.run(prompt, [chunk.masked for *_, chunk in wanted])
    for item in batch:
        for path, split in item.splits.items():
            item.outputs[path] = [(c.masked, "stop") for c in split.chunks]
    for (item, path, i, _), answer in zip(wanted, answers, strict=True):
        item.outputs[path][i] = answer
    for item in batch:
        if item.error is None:
            item.rejection = check_item(item, settings)
    if settings.filters.back_translate:
        back_translate(batch, settings, back, translator)
    return len(wanted)


def check_item(item: Item, settings: Settings):
    """The first rejection of the item's fields (see :mod:`.filters`), or None."""
    for path, split in item.splits.items():
        outputs = item.outputs[path]
        for chunk, (text, reason) in zip(split.chunks, outputs, strict=True):
            found = filters.check_chunk(chunk.masked, len(chunk.spans), text, reason)
            if found:
                return found[0], path, {"chunk": chunk.masked, **found[1]}, text
        source = split.join([c.masked for c in split.chunks])
        translation = split.join([text for text, _ in outputs])
        found = filters.check_field(source, translation, settings.to, settings.filters)
        if found:
            return found[0], path, found[1], restored(split, outputs)
    return None


def back_translate(batch, settings: Settings, back: Prompt, translator) -> None:
    """Rejects the items whose back-translation is too far from the source."""
    wanted = [(item, path, i) for item in batch if item.error is None and item.rejection is None
              for path, split in item.splits.items() for i, c in enumerate(split.chunks)
              if c.needs_model]  # fmt: skip
    answers = translator.run(back, [item.outputs[path][i][0] for item, path, i in wanted])
    backs: dict = {}
    for (item, path, i), (text, _) in zip(wanted, answers, strict=True):
        backs.setdefault((item.index, path), {})[i] = text
    for item in batch:
        if item.error is not None or item.rejection is not None:
            continue
        for path, split in item.splits.items():
            got = backs.get((item.index, path))
            if not got:
                continue
            source = " ".join(split.chunks[i].masked for i in sorted(got))
            text = " ".join(got[i] for i in sorted(got))
            found = filters.check_back(source, text, settings.filters)
            if found:
                details = {**found[1], "back_translation": text}
                item.rejection = found[0], path, details, restored(split, item.outputs[path])
                break


def restored(split: Split, outputs) -> str:
    from plamo_fast.translate.masking import restore

    return split.join(
        [restore(text, c.spans) for c, (text, _) in zip(split.chunks, outputs, strict=True)]
    )


def outcome(item: Item, settings: Settings, prompt: Prompt) -> tuple[str, dict]:
    """``("kept", translated record)`` or ``("rejected", side-file entry)``."""
    if item.error is not None:
        entry = {"source_index": item.index, "reason": "bad_record", "field": None,
                 "details": {"error": item.error}, "record": item.record}  # fmt: skip
        if item.record is None:
            entry["raw"] = item.raw
        return "rejected", entry
    if item.rejection is not None:
        reason, path, details, text = item.rejection
        return "rejected", {"source_index": item.index, "reason": reason,
                            "field": fields.name(path), "details": details,
                            "translation": text, "record": item.record}  # fmt: skip
    record = copy.deepcopy(item.record)
    for path, split in item.splits.items():
        fields.put(record, path, restored(split, item.outputs[path]))
    record.update(
        translated_by=settings.model,
        translated_from=settings.source_lang,
        translated_to=settings.to,
        translation_prompt_version=prompt.version,
        source_index=item.index,
    )
    return "kept", record
