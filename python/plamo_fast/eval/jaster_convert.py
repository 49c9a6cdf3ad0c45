"""``plamo-fast eval jaster-convert``: llm-jp-eval's dataset files from the raw upstream files.

For each dataset found in ``SRC`` (a folder per dataset, named as below, holding the upstream
files under their upstream names, or llm-jp-eval's ``raw_files`` names ``NAME_train.*`` /
``NAME_test.*``), this writes ``OUT/NAME.json`` in llm-jp-eval's evaluation format::

    {"instruction", "output_length", "metrics", "few_shots": [{"input", "output"}],
     "samples": [{"input", "output"}]}

``samples`` is llm-jp-eval's *test* split (the upstream evaluation file, in file order) and
``few_shots`` the first ``--few-shots`` samples of llm-jp-eval's *train* split, which is what
llm-jp-eval takes as few-shot examples (``samples[:num_few_shots]`` of ``train/NAME.json``):
the upstream training file read in order, shuffled with ``random.seed(42)``, of which the first
90% are the train split (the rest is dev). A dataset whose training file is absent is written
with no few-shots (0-shot only), and the run says so.

Instructions, input layouts, output lengths and metrics are those of llm-jp-eval v1.x's
``jaster`` processors (:data:`SPECS`); see :data:`plamo_fast.eval.jaster_metrics.REFERENCE`.
The instructions, output lengths and metrics of five of the six datasets were compared with the
openings of llm-jp-eval's processor files as a code search shows them (JNLI, JCommonsenseQA: the
early ``datasets/`` processors; JSQuAD, JSTS: the ``num_few_split`` ones; JEMHopQA: the
``jaster/`` one with the YES/NO sentence): they agree; NIILC's processor was not found. Those
excerpts come without a repository or commit, so they are not cited here. The seed-42 shuffle
and the 90% train split were not seen in any copy (unverified); of the input layouts only the
``質問：`` and ``文1：`` prefixes were seen.
"""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from plamo_fast.digests import sha256_file
from plamo_fast.errors import InvalidFileError, UsageError
from plamo_fast.eval.jaster_metrics import REFERENCE

Sample = dict  # {"input": str, "output": str}


@dataclass(frozen=True)
class Spec:
    instruction: str
    output_length: int
    metrics: tuple[str, ...]
    train: tuple[str, ...]  # candidate file names of the upstream training split
    test: tuple[str, ...]  # candidate file names of the upstream evaluation split
    read: Callable[[Path], list[Sample]]


# -- readers: one upstream file to llm-jp-eval samples ---------------------------------------


def _json_lines(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InvalidFileError(f"{path}:{number}: malformed JSON: {exc.msg}") from None
    return rows


def _json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidFileError(f"{path}:{exc.lineno}: malformed JSON: {exc.msg}") from None


def _field(path: Path, where: str, record: dict, key: str):
    if not isinstance(record, dict) or key not in record:
        raise InvalidFileError(f"{path}: {where}: no field {key!r}")
    return record[key]


def read_jnli(path: Path) -> list[Sample]:
    out = []
    for k, row in enumerate(_json_lines(path)):
        where = f"record {k + 1}"
        premise = _field(path, where, row, "sentence1")
        hypothesis = _field(path, where, row, "sentence2")
        out.append(
            {
                "input": f"前提：{premise}\n仮説：{hypothesis}",
                "output": _field(path, where, row, "label"),
            }
        )
    return out


def read_jsts(path: Path) -> list[Sample]:
    out = []
    for k, row in enumerate(_json_lines(path)):
        where = f"record {k + 1}"
        first = _field(path, where, row, "sentence1")
        second = _field(path, where, row, "sentence2")
        label = _field(path, where, row, "label")
        out.append({"input": f"文1：{first}\n文2：{second}", "output": str(label)})
    return out


def read_jcommonsenseqa(path: Path) -> list[Sample]:
    out = []
    for k, row in enumerate(_json_lines(path)):
        where = f"record {k + 1}"
        question = _field(path, where, row, "question")
        choices = ",".join(f"{i}.{_field(path, where, row, f'choice{i}')}" for i in range(5))
        label = _field(path, where, row, "label")
        out.append({"input": f"質問：{question}\n選択肢：{choices}", "output": str(label)})
    return out


def read_jsquad(path: Path) -> list[Sample]:
    out = []
    for article in _field(path, "top level", _json(path), "data"):
        for paragraph in _field(path, "an article", article, "paragraphs"):
            context = _field(path, "a paragraph", paragraph, "context")
            for qa in _field(path, "a paragraph", paragraph, "qas"):
                question = _field(path, "a question", qa, "question")
                answers = _field(path, f"question {qa.get('id')}", qa, "answers")
                if not answers:
                    raise InvalidFileError(f"{path}: question {qa.get('id')}: no answers")
                answer = _field(path, f"question {qa.get('id')}", answers[0], "text")
                out.append({"input": f"文章：{context}\n質問：{question}", "output": answer})
    return out


def read_jemhopqa(path: Path) -> list[Sample]:
    rows = _json(path)
    if not isinstance(rows, list):
        raise InvalidFileError(f"{path}: expected a JSON array of questions")
    out = []
    for k, row in enumerate(rows):
        where = f"item {k + 1}"
        question = _field(path, where, row, "question")
        out.append({"input": f"質問：{question}", "output": _field(path, where, row, "answer")})
    return out


def _xml_text(element: ET.Element | None) -> str | None:
    """An element's text as xmltodict gives it (llm-jp-eval parses with xmltodict): stripped,
    and None when empty."""
    if element is None or element.text is None:
        return None
    return element.text.strip() or None


def read_niilc(path: Path) -> list[Sample]:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise InvalidFileError(f"{path}:{exc.position[0]}: malformed XML: {exc}") from None
    out = []
    for question in root.iter("question"):
        text = _xml_text(question.find("text"))
        answers = [_xml_text(a) for a in question.iter("answer")]
        if text is None or not answers:
            raise InvalidFileError(f"{path}: question {question.get('id')}: no text or answers")
        # xmltodict gives one <answer> as a string and several as a list; llm-jp-eval joins a
        # list's non-empty answers with commas, and skips questions answered "-".
        answer = ",".join(a for a in answers if a) if len(answers) > 1 else answers[0]
        if answer == "-":
            continue
        out.append({"input": f"質問：{text}", "output": answer})
    return out


_JGLUE = ("train-v1.1.json",), ("valid-v1.1.json",)

SPECS: dict[str, Spec] = {
    "jcommonsenseqa": Spec(
        "質問と回答の選択肢を入力として受け取り、選択肢から回答を選択してください。"
        "なお、回答は選択肢の番号（例：0）でするものとします。 "
        "回答となる数値をint型で返し、他には何も含めないことを厳守してください。",
        1,
        ("exact_match",),
        *_JGLUE,
        read_jcommonsenseqa,
    ),
    "jemhopqa": Spec(
        "質問を入力とし、回答を出力してください。回答の他には何も含めないことを厳守してください。回答が"
        "'はい'と'いいえ'で答えることができる場合、'YES'と'NO'で答えてください。",
        15,
        ("char_f1",),
        ("train.json", "train_ver1.1.json", "train_ver1.2.json"),
        ("dev.json", "dev_ver1.1.json", "dev_ver1.2.json"),
        read_jemhopqa,
    ),
    "jnli": Spec(
        "前提と仮説の関係をentailment、contradiction、neutralの中から回答してください。"
        "それ以外には何も含めないことを厳守してください。\n\n制約：\n"
        "- 前提から仮説が、論理的知識や常識的知識を用いて導出可能である場合はentailmentと出力\n"
        "- 前提と仮説が両立しえない場合はcontradictionと出力\n"
        "- そのいずれでもない場合はneutralと出力",
        3,
        ("exact_match",),
        *_JGLUE,
        read_jnli,
    ),
    "jsquad": Spec(
        "質問に対する回答を文章から一言で抽出してください。回答は名詞で答えてください。 "
        "それ以外には何も含めないことを厳守してください。",
        25,
        ("char_f1",),
        *_JGLUE,
        read_jsquad,
    ),
    "jsts": Spec(
        "日本語の文ペアの意味がどのくらい近いかを判定し、類似度を0.0〜5.0までの間の値で付与してください。"
        "0.0に近いほど文ペアの意味が異なり、5.0に近いほど文ペアの意味が似ていることを表しています。整数値"
        "のみを返し、それ以外には何も含めないことを厳守してください。",
        3,
        ("pearson", "spearman"),
        *_JGLUE,
        read_jsts,
    ),
    "niilc": Spec(
        "質問に対する答えを出力してください。回答の他には何も含めないことを厳守してください。答えが複数の"
        "場合、コンマ（,）で繋げてください。",
        180,
        ("char_f1",),
        ("NIILC-ECQA2015_dev.xml",),
        ("NIILC-ECQA2015_test.xml",),
        read_niilc,
    ),
}


def llm_jp_eval_train_split(samples: list[Sample]) -> list[Sample]:
    """llm-jp-eval's train split of an upstream training file: shuffled with seed 42 (the
    global ``random`` module in llm-jp-eval; the same Mersenne Twister here), first 90%."""
    shuffled = list(samples)
    random.Random(42).shuffle(shuffled)
    return shuffled[: int(len(shuffled) * 0.9)]


def _find(folder: Path, name: str, names: tuple[str, ...], split: str) -> Path | None:
    for candidate in (*names, f"{name}_{split}.json", f"{name}_{split}.xml"):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def convert_dataset(name: str, folder: Path, few_shots: int) -> tuple[dict, dict]:
    """``(dataset file content, provenance)`` for one dataset folder."""
    spec = SPECS[name]
    test_path = _find(folder, name, spec.test, "test")
    if test_path is None:
        raise UsageError(
            f"{folder}: no evaluation file for {name} (expected one of {', '.join(spec.test)})"
        )
    samples = spec.read(test_path)
    if not samples:
        raise InvalidFileError(f"{test_path}: no items")
    provenance = {"test": {"file": str(test_path), "sha256": sha256_file(test_path)}}
    train_path = _find(folder, name, spec.train, "train")
    shots: list[Sample] = []
    if train_path is not None:
        shots = llm_jp_eval_train_split(spec.read(train_path))[:few_shots]
        provenance["train"] = {"file": str(train_path), "sha256": sha256_file(train_path)}
    data = {
        "instruction": spec.instruction,
        "output_length": spec.output_length,
        "metrics": list(spec.metrics),
        "few_shots": shots,
        "samples": samples,
    }
    return data, provenance


def convert(
    src: Path,
    out: Path,
    *,
    few_shots: int = 20,
    datasets: list[str] | None = None,
    overwrite: bool = False,
) -> dict:
    """Writes ``OUT/NAME.json`` for each dataset folder of ``src`` (or those named) and
    ``OUT/SOURCES.json`` (the source files and their sha256); returns a summary."""
    from plamo_fast.outputs import atomic_output

    src = Path(src)
    if not src.is_dir():
        raise UsageError(f"{src} is not a folder (expected one folder per dataset)")
    if few_shots < 0:
        raise UsageError("--few-shots must be 0 or more")
    unknown = sorted(set(datasets or ()) - set(SPECS))
    if unknown:
        raise UsageError(f"unknown dataset {unknown[0]!r}; known: {', '.join(SPECS)}")
    names = [n for n in SPECS if (src / n).is_dir() and (not datasets or n in datasets)]
    missing = sorted(set(datasets or ()) - set(names))
    if missing:
        raise UsageError(f"{src}: no folder {missing[0]!r}")
    if not names:
        raise UsageError(f"{src}: no dataset folder (expected any of {', '.join(SPECS)})")
    converted = {name: convert_dataset(name, src / name, few_shots) for name in names}
    summary: dict = {"output": str(out), "datasets": {}}
    with atomic_output(out, command="jaster-convert", inputs=[src], overwrite=overwrite) as tmp:
        sources = {"llm_jp_eval": REFERENCE, "few_shots_per_dataset": few_shots, "datasets": {}}
        for name, (data, provenance) in converted.items():
            (tmp / f"{name}.json").write_text(
                json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
            )
            sources["datasets"][name] = provenance
            summary["datasets"][name] = {
                "samples": len(data["samples"]),
                "few_shots": len(data["few_shots"]),
            }
            if "train" not in provenance:
                summary["datasets"][name]["note"] = (
                    "no training file: written without few-shots (0-shot only)"
                )
        (tmp / "SOURCES.json").write_text(
            json.dumps(sources, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
    return summary
