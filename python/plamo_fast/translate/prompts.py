"""The translation prompt: one per target language (``ja``, ``en``), or a template from a file
(``--prompt FILE``, plain UTF-8 text). A template holds ``{text}`` (required: the masked text to
translate) and may hold ``{source}`` and ``{target}`` (the languages' names, in the template's
language); any other ``{lowercase_name}`` is refused, so that a typo is caught before a run.
Braces around anything else (JSON, code) are left alone. The version, a hash of the template,
goes into every record (``translation_prompt_version``) and into the cache key."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from plamo_fast.errors import UsageError

LANGS = ("ja", "en")
REQUIRED, OPTIONAL = ("text",), ("source", "target")
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
NAMES = {  # language -> its name in a template of each language
    "ja": {"ja": "日本語", "en": "Japanese"},
    "en": {"ja": "英語", "en": "English"},
}
DEFAULTS = {
    "ja": (
        "次の文章を自然な日本語に翻訳してください。⟦0⟧ のような記号はコードやURLなどの目印です。"
        "一つも変えたり消したり増やしたりせず、訳文の対応する位置にそのまま残してください。"
        "改行の位置と数は原文どおりにしてください。訳文だけを出力してください。\n\n{text}"
    ),
    "en": (
        "Translate the following text into natural English. Marks such as ⟦0⟧ stand for code, "
        "URLs and the like: keep every one of them exactly as it is, once, at the matching "
        "place in the translation. Keep the line breaks where they are. Write only the "
        "translation.\n\n{text}"
    ),
}


@dataclass(frozen=True)
class Prompt:
    template: str
    target: str
    source_lang: str | None = None

    @property
    def version(self) -> str:
        digest = hashlib.sha256(self.template.encode()).hexdigest()[:12]
        return f"{self.target}-{digest}"

    def render(self, text: str) -> str:
        lang = "ja" if self.target == "ja" else "en"  # the template's own language
        values = {
            "text": text,
            "target": NAMES[self.target][lang],
            "source": NAMES.get(self.source_lang or "", {}).get(lang, ""),
        }
        return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group()), self.template)


def check_lang(lang: str, option: str) -> str:
    if lang not in LANGS:
        raise UsageError(f"{option} takes one of {', '.join(LANGS)}, got {lang!r}")
    return lang


def load_prompt(path: Path | None, target: str, source_lang: str | None = None) -> Prompt:
    """The default prompt for ``target``, or the template of ``path`` (checked)."""
    check_lang(target, "--to")
    if path is None:
        return Prompt(DEFAULTS[target], target, source_lang)
    try:
        template = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"--prompt {path} does not exist") from None
    names = set(PLACEHOLDER.findall(template))
    unknown = sorted(names - set(REQUIRED) - set(OPTIONAL))
    missing = [n for n in REQUIRED if n not in names]
    if unknown or missing:
        what = [f"unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)}"] * bool(
            unknown
        ) + ["no {text}"] * bool(missing)
        raise UsageError(
            f"--prompt {path}: {'; '.join(what)} (a template takes {{text}}, and may take "
            "{source} and {target})"
        )
    return Prompt(template, target, source_lang)
