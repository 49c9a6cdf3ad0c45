"""Benchmark question files, read as the benchmarks publish them, turned into leak-filter items
(one per turn).

Formats: MT-Bench / Japanese MT-Bench / ja-vicuna-qa ``question.jsonl`` (``turns``), Rakuda
v1 (``text``) and v2 (``turns``), llm-jp-eval (Jaster) JSON (``samples[].input``), the raw
Jaster sources (JGLUE JSON lines: JCommonsenseQA ``question``, JNLI/JSTS ``sentence1`` +
``sentence2``; JSQuAD's SQuAD JSON: the questions; JEMHopQA's list: ``question``; NIILC XML:
``<text>``), and any JSONL with ``--bench-field``. A folder is searched for such files.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

from plamo_fast.errors import UsageError

BENCH_SUFFIXES = (".jsonl", ".json", ".xml")
ID_KEYS = ("question_id", "q_id", "qid", "id", "sentence_pair_id", "ID")


@dataclass(frozen=True)
class BenchItem:
    benchmark: str
    item_id: str
    turn: int  # 1-based
    text: str
    turns: int  # turns of the question this item belongs to

    @property
    def standalone(self) -> bool:
        """A first turn stands alone; a later turn ("Can you parallelize it?") counts only
        together with its first turn."""
        return self.turn == 1


class BenchmarkFormatError(UsageError):
    """A benchmark file that cannot be read (the message names file and line)."""


def load_benchmarks(specs: list[str], field: str | None = None) -> list[BenchItem]:
    """Items of every benchmark file; ``specs`` are paths (files or folders) or ``NAME=PATH``."""
    items: list[BenchItem] = []
    skipped: list[str] = []
    for spec in specs:
        name, _, path_text = spec.rpartition("=") if "=" in spec else ("", "", spec)
        path = Path(path_text)
        if not path.exists():
            raise FileNotFoundError(f"benchmark {path} does not exist")
        if not path.is_dir():
            items.extend(load_benchmark_file(path, name or _default_name(path), field))
            continue
        found = 0
        for file in _bench_files(path):
            try:
                loaded = load_benchmark_file(file, name or _default_name(file), field)
            except BenchmarkFormatError as exc:
                # A folder may hold other files (FastChat's reference answers, judgments).
                skipped.append(str(exc))
                continue
            items.extend(loaded)
            found += 1
        if not found:
            detail = f" ({skipped[-1]})" if skipped else ""
            raise BenchmarkFormatError(f"{path}: no benchmark question files in it{detail}")
    if not items:
        raise BenchmarkFormatError("the benchmark files hold no questions")
    for reason in skipped:
        warnings.warn(f"benchmark folder: skipped {reason}", stacklevel=2)
    return items


def _bench_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in BENCH_SUFFIXES)


def _default_name(file: Path) -> str:
    """The folder naming the benchmark plus the file stem: ``mt_bench/question``."""
    return f"{file.parent.name}/{file.stem}" if file.parent.name else file.stem


def load_benchmark_file(path: Path, name: str, field: str | None = None) -> list[BenchItem]:
    if path.suffix == ".xml":
        return _niilc(path, name)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None  # JSON lines with a .json suffix (the JGLUE files)
        if isinstance(data, dict) and "samples" in data:
            return _llm_jp_eval(data["samples"], path, name)
        if isinstance(data, dict) and "data" in data:
            return _squad(data["data"], path, name)
        if isinstance(data, list):
            return [
                it
                for n, record in enumerate(data, start=1)
                for it in _record_items(record, path, n, name, field)
            ]
    items: list[BenchItem] = []
    # Split on newlines only: str.splitlines would also split inside strings at U+2028 etc.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BenchmarkFormatError(f"{path}:{number}: malformed JSON: {exc}") from None
        items.extend(_record_items(record, path, number, name, field))
    return items


def _turns_of(record: dict, field: str | None) -> list[str] | None:
    """The question texts of a record: ``field`` when the record has it, else the first known
    question field."""
    if field is not None and field in record:
        value = record[field]
        return [value] if isinstance(value, str) else value
    if "turns" in record:
        return record["turns"]
    if "question" in record and "choice0" in record:
        # JCommonsenseQA: the question, and the item as llm-jp-eval shows it (question and
        # choices), as two texts of one turn: a bare 「動物は？」 is too generic to match alone.
        choices = [record[k] for k in sorted(record) if k.startswith("choice")]
        listed = ",".join(f"{i}.{c}" for i, c in enumerate(choices))
        return [record["question"], f"質問：{record['question']}\n選択肢：{listed}"]
    if "sentence1" in record and "sentence2" in record:
        # NLI / STS pairs: the pair is the item (llm-jp-eval shows both together).
        return [f"{record['sentence1']}\n{record['sentence2']}"]
    for key in ("text", "question", "input", "instruction", "prompt"):
        if isinstance(record.get(key), str):
            return [record[key]]
    return None


def _record_items(record, path: Path, number: int, name: str, field: str | None):
    if not isinstance(record, dict):
        raise BenchmarkFormatError(f"{path}:{number}: expected a JSON object")
    turns = _turns_of(record, field)
    if not isinstance(turns, list) or not all(isinstance(t, str) for t in turns) or not turns:
        fields = f"{field!r}, " if field else ""
        raise BenchmarkFormatError(
            f"{path}:{number}: no question text (looked for {fields}turns, text, question, "
            "sentence1/sentence2, input, instruction, prompt); pass --bench-field NAME"
        )
    item_id = next((str(record[k]) for k in ID_KEYS if k in record), str(number))
    alternatives = "choice0" in record and field is None  # JCommonsenseQA: see _turns_of
    return [
        BenchItem(
            name, item_id, 1 if alternatives else turn, text, 1 if alternatives else len(turns)
        )
        for turn, text in enumerate(turns, start=1)
        if text.strip()
    ]


def _llm_jp_eval(samples, path: Path, name: str) -> list[BenchItem]:
    if not isinstance(samples, list):
        raise BenchmarkFormatError(f"{path}: 'samples' should be a list")
    items = []
    for n, sample in enumerate(samples):
        if not isinstance(sample, dict) or not isinstance(sample.get("input"), str):
            raise BenchmarkFormatError(f"{path}: samples[{n}] has no string 'input'")
        items.append(BenchItem(name, str(n), 1, sample["input"], 1))
    return items


def _squad(articles, path: Path, name: str) -> list[BenchItem]:
    """The questions of a SQuAD-format file (JSQuAD). The Wikipedia contexts are not indexed:
    training data legitimately contains Wikipedia; the questions are the benchmark."""
    items = []
    for article in articles:
        for paragraph in article.get("paragraphs", []):
            for qa in paragraph.get("qas", []):
                question = qa.get("question")
                if not isinstance(question, str):
                    raise BenchmarkFormatError(f"{path}: question {qa.get('id')} has no text")
                items.append(BenchItem(name, str(qa.get("id")), 1, question, 1))
    return items


def _niilc(path: Path, name: str) -> list[BenchItem]:
    # The standard library parser does not expand external entities; NIILC has none.
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise BenchmarkFormatError(f"{path}: malformed XML: {exc}") from None
    items = []
    for question in root.iter("question"):
        text = question.findtext("text")
        if text and text.strip():
            items.append(BenchItem(name, question.get("id", ""), 1, text.strip(), 1))
    if not items:
        raise BenchmarkFormatError(f"{path}: no <question><text> elements")
    return items
