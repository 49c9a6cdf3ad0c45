"""The three prompts of ``synth instruct`` (titles, question, answer), in Japanese and English,
replaceable from a YAML or JSON file (``--prompts``), and their version string.

A template is plain text with ``{name}`` placeholders; braces around anything that is not a
lowercase name (JSON, code) are left alone. Each template has required and optional
placeholders (:data:`PLACEHOLDERS`); a file whose template lacks a required one, or names one
it does not take, is refused with the list. A file may give any of the three templates; the
others are the ``--lang`` defaults. The version (:attr:`Prompts.version`) is a hash of the three
templates in use: it goes into every record's provenance.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from plamo_fast.errors import UsageError

LANGS = ("ja", "en")
STAGES = ("titles", "question", "answer")
# stage -> (required, optional) placeholders
PLACEHOLDERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "titles": (("examples", "count"), ()),
    "question": (("title",), ("examples",)),
    "answer": (("question",), ("title",)),
}
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")

DEFAULTS = {
    "ja": {
        "titles": (
            "あなたはAIアシスタントの学習用に、さまざまな依頼を考えています。"
            "以下は依頼のタイトルの例です。\n\n{examples}\n\n"
            "これらとは話題や形式の異なる、新しい依頼のタイトルを{count}個考えてください。"
            "タイトルは短い日本語にし、画像やファイルを使わず文章だけで答えられる依頼にしてください。"
            "番号付きのリスト（1. 2. …）で、タイトルだけを書いてください。"
        ),
        "question": (
            "以下は、タイトルとそれに対応するAIアシスタントへの依頼の例です。\n\n{examples}\n\n"
            "次のタイトルに合う依頼を一つ、具体的な日本語で書いてください。"
            "答えるのに必要な文章や数値があれば、依頼の中に含めてください。"
            "依頼の文だけを書き、答えは書かないでください。\n\n"
            "タイトル：{title}\n依頼："
        ),
        "answer": "{question}",
    },
    "en": {
        "titles": (
            "You are writing varied tasks to train an AI assistant. Here are titles of example "
            "tasks:\n\n{examples}\n\n"
            "Write {count} titles of new tasks that differ from these in topic and form. Keep "
            "each title short, and choose tasks that can be answered in text alone, without "
            "images or files. Give a numbered list (1. 2. ...) of titles and nothing else."
        ),
        "question": (
            "Here are titles with the task an AI assistant was given for each:\n\n{examples}\n\n"
            "Write one specific task for the following title. Include any text or numbers "
            "needed to answer it. Write only the task, not its answer.\n\n"
            "Title: {title}\nTask:"
        ),
        "answer": "{question}",
    },
}
# How one example is shown in the titles prompt and in the question prompt.
EXAMPLE_PAIR = {
    "ja": "タイトル：{title}\n依頼：{question}",
    "en": "Title: {title}\nTask: {question}",
}


@dataclass(frozen=True)
class Prompts:
    lang: str
    templates: dict[str, str]
    source: str  # "ja", "en", or the file they came from

    @property
    def version(self) -> str:
        """``p-`` and 12 hex digits of the sha256 of the three templates (canonical JSON)."""
        text = json.dumps({k: self.templates[k] for k in STAGES}, sort_keys=True)
        return "p-" + hashlib.sha256(text.encode()).hexdigest()[:12]

    def render(self, stage: str, **values: str) -> str:
        """The template of ``stage`` with its placeholders filled (every one it uses)."""
        template = self.templates[stage]
        return PLACEHOLDER.sub(lambda m: str(values[m[1]]) if m[1] in values else m[0], template)

    def example_pair(self, title: str, question: str) -> str:
        return EXAMPLE_PAIR[self.lang].format(title=title, question=question)


def load_prompts(lang: str, path: Path | None = None) -> Prompts:
    """The default prompts of ``lang``, with the templates of ``path`` (YAML or JSON mapping
    ``titles`` / ``question`` / ``answer`` to text) in place of the defaults it gives."""
    if lang not in LANGS:
        raise UsageError(f"--lang takes {' or '.join(LANGS)}, got {lang!r}")
    templates = dict(DEFAULTS[lang])
    if path is None:
        return Prompts(lang, templates, lang)
    templates.update(_read_file(Path(path)))
    problems = [p for stage in STAGES for p in check_template(stage, templates[stage])]
    if problems:
        raise UsageError(f"{path}: " + "; ".join(problems))
    return Prompts(lang, templates, str(path))


def check_template(stage: str, template: str) -> list[str]:
    """What is wrong with a template: missing required and unknown placeholders."""
    required, optional = PLACEHOLDERS[stage]
    used = set(PLACEHOLDER.findall(template))
    problems = []
    missing = [name for name in required if name not in used]
    if missing:
        names = ", ".join("{" + m + "}" for m in missing)
        problems.append(f"template {stage!r} lacks {names}")
    unknown = sorted(used - set(required) - set(optional))
    if unknown:
        names = ", ".join("{" + u + "}" for u in unknown)
        takes = ", ".join("{" + t + "}" for t in (*required, *optional))
        problems.append(f"template {stage!r} has unknown {names} (it takes {takes})")
    return problems


def _read_file(path: Path) -> dict[str, str]:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"--prompts {path} does not exist") from None
    try:
        # YAML reads JSON too; a .json file is read as JSON for exact error positions.
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: malformed prompts file: {exc}") from None
    if not isinstance(data, dict) or not data:
        raise UsageError(f"{path}: expected a mapping of {', '.join(STAGES)} to templates")
    unknown = sorted(set(data) - set(STAGES))
    if unknown:
        raise UsageError(f"{path}: unknown keys {unknown} (expected {', '.join(STAGES)})")
    for key, value in data.items():
        if not isinstance(value, str) or not value.strip():
            raise UsageError(f"{path}: {key!r} must be a non-empty string")
    return data
