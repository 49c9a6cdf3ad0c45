"""Benchmark question files, read as the benchmarks publish them, turned into leak-filter items
(one per turn).

Formats: MT-Bench / Japanese MT-Bench / ja-vicuna-qa ``question.jsonl`` (``turns``), Rakuda
v1 (``text``) and v2 (``turns``), llm-jp-eval (Jaster) JSON (``samples[].input``), the raw
Jaster sources (JGLUE JSON lines: JCommonsenseQA ``question``, JNLI/JSTS ``sentence1`` +
``sentence2``; JSQuAD's SQuAD JSON: the questions; JEMHopQA's list: ``question``; NIILC XML:
``<text>``), and any JSONL with ``--bench-field``.

A folder is searched for question files, recognized by name and first record (see the
comment above ``_named_question``): they are indexed, and a question file that cannot be read
is an error. The other files that benchmarks publish beside their questions (judge prompts,
model and reference answers, judgments, rankings) are skipped, and the caller reports them in
one line (:attr:`Benchmarks.skipped`, :func:`skipped_line`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from plamo_fast.errors import UsageError

BENCH_SUFFIXES = (".jsonl", ".json", ".xml")
ID_KEYS = ("question_id", "q_id", "qid", "id", "sentence_pair_id", "ID")
# A file named like this holds questions (MT-Bench question.jsonl, Rakuda questions.jsonl,
# Japanese MT-Bench question_full.jsonl): it must load.
QUESTION_NAME = re.compile(r"(^|[_.-])questions?([_.-]|$)", re.IGNORECASE)
# A file (or a folder it is in) named like this holds what a benchmark publishes beside its
# questions: model answers, reference answers, judgments, rankings, reviewer settings.
OTHER_NAME = re.compile(r"answer|judg|ranking|review", re.IGNORECASE)
# Keys of records that are not questions: FastChat/Rakuda answers (choices, answer_id,
# model_id), judge prompts (prompt_template, system_prompt), judgments, rankings, reviewers.
OTHER_KEYS = frozenset(
    {"choices", "answer_id", "model_id", "prompt_template", "system_prompt", "judge",
     "judgment", "ranking", "reviewer_id"}
)  # fmt: skip


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


@dataclass
class Benchmarks:
    """The items of the benchmark specs, the question files they came from, and the files of
    benchmark folders that were skipped as not being questions."""

    items: list[BenchItem] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)


class BenchmarkFormatError(UsageError):
    """A benchmark file that cannot be read (the message names file and line)."""


def skipped_line(indexed: int, skipped: list) -> str:
    """The one line that reports the files of benchmark folders skipped as not questions."""
    shown = ", ".join(str(p) for p in skipped[:3])
    more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    return (
        f"benchmarks: indexed {indexed} question files; skipped {len(skipped)} files that are "
        f"not benchmark questions (judge prompts, answers, judgments, rankings): {shown}{more}"
    )


def split_spec(spec: str) -> tuple[str, Path]:
    """``NAME=PATH`` or ``PATH`` as ``(name or "", path)``."""
    name, _, path = spec.rpartition("=") if "=" in spec else ("", "", spec)
    return name, Path(path)


def load_benchmarks(specs: list[str], field: str | None = None) -> list[BenchItem]:
    """Items of every benchmark; see :func:`read_benchmarks`."""
    return read_benchmarks(specs, field).items


def read_benchmarks(specs: list[str], field: str | None = None) -> Benchmarks:
    """Items of every benchmark; ``specs`` are paths (files or folders) or ``NAME=PATH``. A
    file given by itself must be a question file; a folder is searched for question files and
    its other files are listed in ``skipped``."""
    found = Benchmarks()
    for spec in specs:
        name, path = split_spec(spec)
        if not path.exists():
            raise FileNotFoundError(f"benchmark {path} does not exist")
        if not path.is_dir():
            found.items.extend(load_benchmark_file(path, name or _default_name(path), field))
            found.files.append(path)
            continue
        before = len(found.files)
        for file in _bench_files(path):
            relative = file.relative_to(path)
            data = None if _named_other(relative) else _read(file)
            if data is None or not (_named_question(relative) or _question_schema(data, field)):
                found.skipped.append(file)
                continue
            found.items.extend(_items(data, file, name or _default_name(file), field))
            found.files.append(file)
        if len(found.files) == before:
            raise BenchmarkFormatError(f"{path}: no benchmark question files in it")
    if not found.items:
        raise BenchmarkFormatError("the benchmark files hold no questions")
    return found


# Which files of a benchmark folder hold questions. By name first: a file named question(s)
# does, and must load; a file (or a folder it is in) named answer, judgment, ranking or review
# does not, and is not read. Otherwise by its first record: one with a question field and none
# of the keys of answers, judge prompts, judgments or rankings does. A file whose first record
# cannot be parsed counts as a question file, so that it is an error rather than a silent skip.


def _named_question(relative: Path) -> bool:
    return QUESTION_NAME.search(relative.stem) is not None


def _named_other(relative: Path) -> bool:
    if _named_question(relative):
        return False
    return any(OTHER_NAME.search(part) for part in (*relative.parent.parts, relative.stem))


def _question_schema(data, field: str | None) -> bool:
    first = _first_record(data)
    if first is None:
        return True
    if isinstance(first, _Xml):
        return first.root.find(".//question/text") is not None
    if not isinstance(first, dict):
        return False
    if isinstance(first.get("samples"), list) or isinstance(first.get("data"), list):
        return True  # llm-jp-eval, SQuAD
    return not OTHER_KEYS & first.keys() and _turns_of(first, field) is not None


def _bench_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in BENCH_SUFFIXES)


def _default_name(file: Path) -> str:
    """The folder naming the benchmark plus the file stem: ``mt_bench/question``."""
    return f"{file.parent.name}/{file.stem}" if file.parent.name else file.stem


def load_benchmark_file(path: Path, name: str, field: str | None = None) -> list[BenchItem]:
    return _items(_read(path), path, name, field)


@dataclass
class _Xml:
    root: object  # xml.etree.ElementTree.Element


@dataclass
class _Lines:
    """A JSON-lines file: ``(line number, text)`` of its non-blank lines."""

    lines: list[tuple[int, str]]


def _read(path: Path):
    """The parsed content of a benchmark file: an :class:`_Xml` root, one JSON document (a
    whole file that parses as one value, pretty-printed or not), or :class:`_Lines`."""
    if path.suffix == ".xml":
        # The standard library parser does not expand external entities; NIILC has none.
        import xml.etree.ElementTree as ET

        try:
            return _Xml(ET.parse(path).getroot())
        except ET.ParseError as exc:
            raise BenchmarkFormatError(f"{path}: malformed XML: {exc}") from None
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise BenchmarkFormatError(f"{path}: invalid UTF-8 at byte {exc.start}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass  # JSON lines (also with a .json suffix: the JGLUE files), or malformed
    # Split on newlines only: str.splitlines would also split inside strings at U+2028 etc.
    return _Lines([(n, line) for n, line in enumerate(text.split("\n"), 1) if line.strip()])


def _first_record(data):
    """The first record of parsed content (None when it does not parse)."""
    if isinstance(data, _Lines):
        if not data.lines:
            return {}
        try:
            return json.loads(data.lines[0][1])
        except json.JSONDecodeError:
            return None
    if isinstance(data, list):
        return data[0] if data else {}
    return data


def _items(data, path: Path, name: str, field: str | None) -> list[BenchItem]:
    if isinstance(data, _Xml):
        items = _niilc(data.root, path, name)
    elif isinstance(data, dict) and "samples" in data:
        items = _llm_jp_eval(data["samples"], path, name)
    elif isinstance(data, dict) and "data" in data:
        items = _squad(data["data"], path, name)
    else:
        if isinstance(data, _Lines):
            records = [(n, _parse_line(path, n, line)) for n, line in data.lines]
        else:
            records = list(enumerate(data if isinstance(data, list) else [data], start=1))
        items = [it for n, rec in records for it in _record_items(rec, path, n, name, field)]
    if not items:
        raise BenchmarkFormatError(f"{path}: no questions in it")
    return items


def _parse_line(path: Path, number: int, line: str):
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise BenchmarkFormatError(f"{path}:{number}: malformed JSON: {exc}") from None


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
    try:
        for article in articles:
            for paragraph in article.get("paragraphs", []):
                for qa in paragraph.get("qas", []):
                    question = qa.get("question")
                    if not isinstance(question, str):
                        raise BenchmarkFormatError(f"{path}: question {qa.get('id')} has no text")
                    items.append(BenchItem(name, str(qa.get("id")), 1, question, 1))
    except (AttributeError, TypeError):
        raise BenchmarkFormatError(
            f"{path}: 'data' is not SQuAD's list of articles with paragraphs and qas"
        ) from None
    return items


def _niilc(root, path: Path, name: str) -> list[BenchItem]:
    items = []
    for question in root.iter("question"):
        text = question.findtext("text")
        if text and text.strip():
            items.append(BenchItem(name, question.get("id", ""), 1, text.strip(), 1))
    if not items:
        raise BenchmarkFormatError(f"{path}: no <question><text> elements")
    return items
