"""``plamo-fast pack``: records -> chat template -> tokens -> response-only labels -> global
best-fit-decreasing packing -> Parquet rows and ``pack_report.json``.

Python renders the templates (the exact Jinja setup of transformers); the native core tokenizes
and labels in parallel with the GIL released, and packs. Every input record is accounted for:
packed exactly once, or counted as dropped with its reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from plamo_fast import _native
from plamo_fast._progress import progress_bar
from plamo_fast.data.chat_template import render_with_spans
from plamo_fast.data.packing import IGNORE_INDEX, pack_documents, pad_rows
from plamo_fast.data.records import (
    Conversation,
    RecordError,
    Tokenized,
    _as_messages,
    iter_rows,
    sft_example,
)
from plamo_fast.errors import UsageError

BATCH = 2048
REPORT_FILE = "pack_report.json"
SPECIAL_TOKEN_KEYS = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
)


@dataclass
class TokenizerBundle:
    native: object
    chat_template: str
    special_tokens: dict[str, str]


def load_tokenizer(
    folder: str | os.PathLike, chat_template: str | os.PathLike | None = None
) -> TokenizerBundle:
    folder = Path(folder)
    tokenizer_json = folder / "tokenizer.json"
    if not tokenizer_json.is_file():
        raise UsageError(
            f"{folder}: no tokenizer.json; only fast (Rust) tokenizers are "
            "supported so far (the slow-tokenizer path is not implemented yet)"
        )
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: use "default"
        template = next((t["template"] for t in template if t.get("name") == "default"), None)
    if (folder / "chat_template.jinja").is_file():
        template = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    if chat_template is not None:
        template = Path(chat_template).read_text(encoding="utf-8")
    if not template:
        raise UsageError(f"{folder}: the tokenizer has no chat_template (pass --chat-template)")
    special = {}
    for key in SPECIAL_TOKEN_KEYS:
        value = config.get(key)
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str):
            special[key] = value
    return TokenizerBundle(_native.ChatTokenizer(tokenizer_json), template, special)


@dataclass
class PackReport:
    inputs: list[str]
    kind: str
    max_length: int
    examples_read: int = 0
    examples_packed: int = 0
    dropped: Counter = field(default_factory=Counter)
    bad_records: list[str] = field(default_factory=list)
    mixture: dict = field(default_factory=dict)
    total_tokens: int = 0
    trained_tokens: int = 0
    rows: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict:
        lower = -(-self.total_tokens // self.max_length) if self.total_tokens else 0
        return {
            "inputs": self.inputs,
            "kind": self.kind,
            "max_length": self.max_length,
            "examples_read": self.examples_read,
            "examples_packed": self.examples_packed,
            "dropped": dict(self.dropped),
            "bad_records": self.bad_records[:100],
            "mixture": self.mixture,
            "total_tokens": self.total_tokens,
            "trained_tokens": self.trained_tokens,
            "rows": self.rows,
            "fill_ratio": self.total_tokens / (self.rows * self.max_length) if self.rows else 0.0,
            "rows_lower_bound": lower,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class _Docs:
    """Tokenized documents collected for packing (one per SFT example, two per DPO pair)."""

    ids: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    doc_ids: list[int] = field(default_factory=list)
    source_ids: list[int] = field(default_factory=list)
    group_sizes: list[int] = field(default_factory=list)


def _dpo_conversations(record, where: str) -> list[Conversation]:
    if not isinstance(record, dict) or not all(
        k in record for k in ("prompt", "chosen", "rejected")
    ):
        raise RecordError(f"{where}: DPO records need 'prompt', 'chosen' and 'rejected'")
    prompt = _as_messages(record["prompt"], "user", where)
    out = []
    for key in ("chosen", "rejected"):
        answer = _as_messages(record[key], "assistant", where)
        messages = prompt + answer
        trained = [len(prompt) + i for i, m in enumerate(answer) if m["role"] == "assistant"]
        out.append(Conversation(messages, trained))
    return out


def _drop_oldest_exchange(messages: list[dict]) -> list[dict] | None:
    """The conversation without its oldest user/assistant exchange (a leading system message is
    kept); None when only the final exchange is left."""
    head = 1 if messages and messages[0]["role"] == "system" else 0
    rest = messages[head:]
    for i in range(1, len(rest)):
        if rest[i]["role"] == "user" and any(m["role"] == "assistant" for m in rest[:i]):
            return messages[:head] + rest[i:]
    return None


class _Packer:
    def __init__(
        self, tokenizer: TokenizerBundle, max_length: int, truncate: str, last_turn_only: bool
    ):
        self.tok = tokenizer
        self.max_length = max_length
        self.truncate = truncate
        self.last_turn_only = last_turn_only

    def render(self, conversations: list[Conversation]) -> tuple[list[str], list[list]]:
        texts, spans = [], []
        for c in conversations:
            text, span = render_with_spans(
                self.tok.chat_template, c.messages, self.tok.special_tokens, c.trained
            )
            texts.append(text)
            spans.append(span)
        return texts, spans

    def tokenize(self, texts: list[str], spans: list[list]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Native, parallel, with the GIL released (so rendering the next batch overlaps it)."""
        ids_b, labels_b, offsets_b = self.tok.native.encode_masked_batch(texts, spans)
        ids = np.frombuffer(ids_b, dtype="<u4").astype(np.int32)
        labels = np.frombuffer(labels_b, dtype="<i4")
        offsets = np.frombuffer(offsets_b, dtype="<u8").astype(np.int64)
        return [
            (ids[offsets[i] : offsets[i + 1]], labels[offsets[i] : offsets[i + 1]])
            for i in range(len(texts))
        ]

    def encode(self, conversations: list[Conversation]) -> list[tuple[np.ndarray, np.ndarray]]:
        return self.tokenize(*self.render(conversations))

    def fit_left(self, c: Conversation) -> tuple[np.ndarray, np.ndarray] | None:
        """Drops the oldest exchanges until the conversation fits; the final answer stays whole."""
        messages = c.messages
        while True:
            messages = _drop_oldest_exchange(messages)
            if messages is None:
                return None
            trained = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
            if self.last_turn_only:
                trained = trained[-1:]
            ids, labels = self.encode([Conversation(messages, trained)])[0]
            if len(ids) <= self.max_length:
                return ids, labels


def pack(
    inputs: list[str | os.PathLike],
    tokenizer: str | os.PathLike,
    output: str | os.PathLike,
    *,
    max_length: int,
    kind: str = "sft",
    chat_template: str | os.PathLike | None = None,
    truncate: str = "drop",
    last_turn_only: bool = False,
    seed: int = 0,
    skip_bad: bool = False,
    overwrite: bool = False,
    pad: bool = False,
    progress: bool = False,
) -> dict:
    """Packs JSONL/Parquet records into ``output`` (a folder: ``data.parquet`` and
    ``pack_report.json``), written to a temporary folder and renamed when complete."""
    started = time.perf_counter()
    if kind not in ("sft", "dpo"):
        raise UsageError(f"kind must be sft or dpo, got {kind!r}")
    if truncate not in ("drop", "left"):
        raise UsageError(f"truncate must be drop or left, got {truncate!r}")
    if max_length < 2:
        raise UsageError(f"max_length must be at least 2, got {max_length}")
    specs = [parse_input(p) for p in inputs]
    paths = [path for path, _ in specs]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: input file not found")
    out = Path(output)
    if out.exists() and not overwrite:
        raise UsageError(f"output {out} already exists (pass --overwrite to replace it)")
    bundle = load_tokenizer(tokenizer, chat_template)
    packer = _Packer(bundle, max_length, truncate, last_turn_only)
    report = PackReport([str(p) for p in paths], kind, max_length)
    docs = _Docs()

    pipeline = _Pipeline(docs, report, packer)
    update, stop = progress_bar("packing: examples", None, transfer=False, show=progress)
    for source, path in enumerate(paths):
        read_here = 0
        pending: list[tuple[int, list[Conversation]]] = []
        for number, record in iter_rows(path):
            read_here += 1
            report.examples_read += 1
            where = f"{path}:{number}"
            try:
                if isinstance(record, Exception):
                    raise record
                if kind == "dpo":
                    pending.append((number - 1, _dpo_conversations(record, where)))
                else:
                    example = sft_example(record, where, last_turn_only)
                    if isinstance(example, Tokenized):
                        _add(
                            docs,
                            report,
                            packer,
                            source,
                            number - 1,
                            [
                                (
                                    np.asarray(example.input_ids, np.int32),
                                    np.asarray(example.labels, np.int32),
                                )
                            ],
                            None,
                        )
                    else:
                        pending.append((number - 1, [example]))
            except RecordError as exc:
                if not skip_bad:
                    raise
                report.dropped["malformed"] += 1
                report.bad_records.append(str(exc))
            if len(pending) >= BATCH:
                pipeline.submit(pending, source)
                pending = []
                update(report.examples_read)
        pipeline.submit(pending, source)
        if read_here == 0:
            if not skip_bad:
                raise RecordError(f"{path}: no records (empty file)")
            report.bad_records.append(f"{path}: no records (empty file)")

    pipeline.finish()
    stop()
    if any(amount is not None for _, amount in specs):
        _apply_mixture(docs, report, [amount for _, amount in specs], seed)
    table = _packed_table(docs, report, max_length, kind, seed, multiple_sources=len(paths) > 1)
    if pad:
        table = pad_rows(table, max_length, _pad_id(bundle))
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    partial.mkdir()
    try:
        import pyarrow.parquet as pq

        pq.write_table(table, partial / "data.parquet")
        report.seconds = time.perf_counter() - started
        result = report.to_json()
        (partial / REPORT_FILE).write_text(json.dumps(result, indent=2) + "\n")
        if out.exists() and overwrite:
            shutil.rmtree(out)
        os.rename(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return result


def parse_input(spec: str | os.PathLike) -> tuple[Path, str | None]:
    """``FILE``, ``FILE:N`` (take N examples) or ``FILE:Wx`` (W times its examples, e.g. 0.5x or
    2x). The suffix is read only when it has that form, so other paths with ':' still work."""
    text = str(spec)
    head, sep, tail = text.rpartition(":")
    if sep and head and re.fullmatch(r"\d+|\d+(\.\d+)?x", tail):
        return Path(head), tail
    return Path(text), None


def _mixture_counts(amount: str, available: int) -> int:
    if amount.endswith("x"):
        return round(float(amount[:-1]) * available)
    return int(amount)


def _apply_mixture(docs: _Docs, report: PackReport, amounts: list, seed: int) -> None:
    """Resamples each input's packed examples (whole DPO pairs) to its requested amount: all of
    them once per full multiple, then a seeded sample without replacement for the remainder."""
    rng = np.random.default_rng(seed)
    sizes = np.asarray(docs.group_sizes, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    group_source = np.asarray(docs.source_ids, dtype=np.int64)[starts] if len(starts) else starts
    chosen = []
    for source, amount in enumerate(amounts):
        groups = np.flatnonzero(group_source == source)
        if amount is None:
            chosen.append(groups)
            continue
        want = _mixture_counts(amount, len(groups))
        if want and not len(groups):
            raise UsageError(f"input {source} has no packed examples to sample {amount} from")
        whole, rest = divmod(want, len(groups)) if len(groups) else (0, 0)
        picked = np.concatenate(
            [np.tile(groups, whole), np.sort(rng.choice(groups, size=rest, replace=False))]
        )
        chosen.append(picked.astype(np.int64))
        report.mixture[str(source)] = {
            "amount": amount,
            "available": int(len(groups)),
            "taken": int(want),
        }
    order = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    doc_index = (
        np.concatenate([np.arange(starts[g], starts[g] + sizes[g]) for g in order])
        if len(order)
        else np.zeros(0, dtype=np.int64)
    )
    docs.ids = [docs.ids[i] for i in doc_index]
    docs.labels = [docs.labels[i] for i in doc_index]
    docs.doc_ids = [docs.doc_ids[i] for i in doc_index]
    docs.source_ids = [docs.source_ids[i] for i in doc_index]
    docs.group_sizes = sizes[order].tolist()
    report.examples_packed = len(order)
    report.total_tokens = int(sum(len(ids) for ids in docs.ids))
    report.trained_tokens = int(
        sum(np.count_nonzero(labels[1:] != IGNORE_INDEX) for labels in docs.labels)
    )


def _pad_id(bundle: TokenizerBundle) -> int:
    token = bundle.special_tokens.get("pad_token") or bundle.special_tokens.get("eos_token")
    ids = bundle.native.encode_ids(token) if token else []
    if len(ids) != 1:
        raise UsageError(
            "--pad needs a pad_token (or eos_token) that is a single token in tokenizer_config.json"
        )
    return ids[0]


class _Pipeline:
    """Renders batch k+1 in Python while the native core tokenizes batch k (GIL released);
    results are added in input order."""

    def __init__(self, docs: _Docs, report: PackReport, packer: _Packer):
        from concurrent.futures import ThreadPoolExecutor

        self.docs, self.report, self.packer = docs, report, packer
        self.executor = ThreadPoolExecutor(max_workers=1)
        self.inflight = None

    def submit(self, pending: list[tuple[int, list[Conversation]]], source: int) -> None:
        if not pending:
            return
        texts, spans = self.packer.render([c for _, group in pending for c in group])
        self._collect()
        future = self.executor.submit(self.packer.tokenize, texts, spans)
        self.inflight = (future, pending, source)

    def add_tokenized(self, source: int, doc_id: int, example: Tokenized) -> None:
        self._collect()  # keep input order
        parts = [(np.asarray(example.input_ids, np.int32), np.asarray(example.labels, np.int32))]
        _add(self.docs, self.report, self.packer, source, doc_id, parts, None)

    def _collect(self) -> None:
        if self.inflight is None:
            return
        future, pending, source = self.inflight
        self.inflight = None
        encoded = future.result()
        cursor = 0
        for doc_id, group in pending:
            parts = encoded[cursor : cursor + len(group)]
            cursor += len(group)
            _add(self.docs, self.report, self.packer, source, doc_id, parts, group)

    def finish(self) -> None:
        try:
            self._collect()
        finally:
            self.executor.shutdown(wait=True)


def _add(
    docs: _Docs,
    report: PackReport,
    packer: _Packer,
    source: int,
    doc_id: int,
    parts: list[tuple[np.ndarray, np.ndarray]],
    conversations,
) -> None:
    """Adds one example (one document, or a DPO pair) after the length and label checks."""
    if sum(len(ids) for ids, _ in parts) > packer.max_length:
        if packer.truncate == "left" and conversations is not None and len(parts) == 1:
            fitted = packer.fit_left(conversations[0])
            if fitted is None:
                report.dropped["too_long"] += 1
                return
            parts = [fitted]
        else:
            report.dropped["too_long"] += 1
            return
    # The first token of each document never carries a target (packing masks it), so a
    # document must have a trained token after its first.
    if any(not np.any(labels[1:] != IGNORE_INDEX) for _, labels in parts):
        report.dropped["no_trainable_token"] += 1
        return
    for ids, labels in parts:
        docs.ids.append(ids)
        docs.labels.append(labels)
        docs.doc_ids.append(doc_id)
        docs.source_ids.append(source)
        report.total_tokens += len(ids)
        report.trained_tokens += int(np.count_nonzero(labels[1:] != IGNORE_INDEX))
    docs.group_sizes.append(len(parts))
    report.examples_packed += 1


def _packed_table(
    docs: _Docs,
    report: PackReport,
    max_length: int,
    kind: str,
    seed: int,
    *,
    multiple_sources: bool,
):
    lengths = np.array([len(i) for i in docs.ids], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    tokens = np.concatenate(docs.ids) if docs.ids else np.zeros(0, np.int32)
    labels = np.concatenate(docs.labels) if docs.labels else np.zeros(0, np.int32)
    doc_ids = np.asarray(docs.doc_ids, dtype=np.int64)
    table = pack_documents(
        tokens,
        labels,
        offsets,
        max_length,
        doc_ids=doc_ids,
        source_ids=np.asarray(docs.source_ids, np.int32) if multiple_sources else None,
        pair_ids=doc_ids if kind == "dpo" else None,
        group_sizes=np.asarray(docs.group_sizes, np.int64),
        seed=seed,
    )
    report.rows = table.num_rows
    return table
