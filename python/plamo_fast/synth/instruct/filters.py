"""The filters of ``synth instruct``, each giving a reason (and details) to reject a candidate,
or None to keep it. The run applies them in this order and counts each candidate under its
first reason:

- ``truncated``: the model was cut at ``--max-new-tokens`` (``finish_reason == "length"``).
- ``too_short`` / ``too_long``: characters of the text (after stripping) outside the limits.
- ``blacklist``: a keyword of a task that text cannot answer (image, graph, file, 画像, 図, …).
  ASCII keywords match whole words, case-insensitively (``file`` is not found in ``profile``);
  others match anywhere, except inside an exception (``図`` is not found in ``意図`` or
  ``図書館``). ``--blacklist FILE`` replaces the list: one keyword a line, ``!WORD`` an
  exception, ``#`` a comment.
- ``language``: the share of the run's script among the letters of the text, code blocks and
  inline code left out: kana and kanji for ``ja`` (and a Japanese text with kanji but no kana
  of 10 letters or more, Chinese, is refused), Latin letters for ``en``. For a question, the
  share of its first line counts when higher (an instruction followed by text in another
  language to translate). An answer entirely in another language (a translation into English)
  is rejected unless ``--min-answer-share 0``.
- ``benchmark_leak``: the question reproduces a benchmark item (the leak index of
  ``plamo-fast decontaminate``, with its defaults).
- ``novelty``: ROUGE-L F1 above ``--novelty`` against a kept instruction (seeds included;
  :class:`plamo_fast.synth.novelty.NoveltyFilter`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from plamo_fast.data.scripts import script_share
from plamo_fast.errors import UsageError

Rejection = tuple[str, dict]  # (reason, details)

DEFAULT_BLACKLIST = (
    # English (whole words): tasks that need something besides text
    "image", "images", "picture", "pictures", "photo", "photos", "graph", "graphs", "chart",
    "charts", "diagram", "diagrams", "flowchart", "map", "maps", "draw", "plot", "plots",
    "file", "files", "attached", "attachment", "video", "videos", "audio", "go to",
    # Japanese (anywhere)
    "画像", "図", "グラフ", "チャート", "ファイル", "添付", "写真", "地図", "イラスト",
    "描いて", "描く", "動画", "音声", "録音", "URL",
)  # fmt: skip
# Words holding a Japanese keyword that are not about pictures: 意図 (intent), 図書 (books), ...
DEFAULT_EXCEPTIONS = ("意図", "図書", "合図", "企図", "図る", "図り", "図ら", "図れ", "図っ")

CHINESE_MIN = 10  # letters from which a kanji-only text counts as Chinese


class Blacklist:
    def __init__(
        self,
        keywords: tuple[str, ...] = DEFAULT_BLACKLIST,
        exceptions: tuple[str, ...] = DEFAULT_EXCEPTIONS,
    ):
        self.keywords, self.exceptions = tuple(keywords), tuple(exceptions)
        words = [k for k in self.keywords if k.isascii()]
        others = [k for k in self.keywords if not k.isascii()]
        parts = [re.escape(k) for k in sorted(others, key=len, reverse=True)]
        if words:
            alternatives = "|".join(map(re.escape, sorted(words, key=len, reverse=True)))
            parts.append(rf"(?<![A-Za-z0-9_])(?:{alternatives})(?![A-Za-z0-9_])")
        # No keyword: a pattern that matches nothing.
        self._pattern = re.compile("|".join(parts) or r"(?!x)x", re.IGNORECASE)
        skip = sorted(self.exceptions, key=len, reverse=True)
        self._skip = re.compile("|".join(map(re.escape, skip))) if skip else None

    def find(self, text: str) -> str | None:
        """The first keyword in ``text`` (outside the exceptions), or None."""
        if self._skip is not None:
            text = self._skip.sub("\0", text)
        found = self._pattern.search(text)
        return found[0] if found else None


def load_blacklist(path: Path | None) -> Blacklist:
    """The default list, or the keywords of ``path`` (see the module text)."""
    if path is None:
        return Blacklist()
    keywords: list[str] = []
    exceptions: list[str] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise FileNotFoundError(f"--blacklist {path} does not exist") from None
    for line in lines:
        word = line.strip()
        if not word or word.startswith("#"):
            continue
        (exceptions if word.startswith("!") else keywords).append(word.lstrip("!").strip())
    return Blacklist(tuple(keywords), tuple(e for e in exceptions if e))


@dataclass(frozen=True)
class FilterConfig:
    min_question_chars: int = 8
    max_question_chars: int = 2000
    min_answer_chars: int = 2
    max_answer_chars: int = 10000
    max_title_chars: int = 80
    min_question_share: float = 0.5
    min_answer_share: float = 0.2
    novelty: float = 0.7
    blacklist: Blacklist = field(default_factory=Blacklist)

    def check(self) -> None:
        if not 0 <= self.min_question_chars <= self.max_question_chars:
            raise UsageError("--min-question-chars must be between 0 and --max-question-chars")
        if not 0 <= self.min_answer_chars <= self.max_answer_chars:
            raise UsageError("--min-answer-chars must be between 0 and --max-answer-chars")
        for name, value in (
            ("--novelty", self.novelty),
            ("--min-question-share", self.min_question_share),
            ("--min-answer-share", self.min_answer_share),
        ):
            if not 0 <= value <= 1:
                raise UsageError(f"{name} takes a number from 0 to 1, got {value}")

    def settings(self) -> dict:
        """What shapes the output (for the resume check and the report)."""
        values = {k: v for k, v in vars(self).items() if k != "blacklist"}
        values["blacklist"] = list(self.blacklist.keywords)
        values["blacklist_exceptions"] = list(self.blacklist.exceptions)
        return values


def truncated(finish_reason: str) -> Rejection | None:
    return ("truncated", {}) if finish_reason == "length" else None


def length(text: str, low: int, high: int) -> Rejection | None:
    size = len(text)
    if size < low:
        return "too_short", {"chars": size, "min": low}
    if size > high:
        return "too_long", {"chars": size, "max": high}
    return None


def blacklisted(text: str, blacklist: Blacklist) -> Rejection | None:
    word = blacklist.find(text)
    return ("blacklist", {"keyword": word}) if word else None


def language(text: str, lang: str, min_share: float, *, by_line: bool = False) -> Rejection | None:
    """``by_line``: the first line's share counts when it is higher (a Japanese instruction
    followed by English input to translate, or code to fix)."""
    share, letters, kana, han = script_share(text, lang)
    if by_line and share < min_share:
        first = next((x for x in text.splitlines() if x.strip()), "")
        head = script_share(first, lang)
        if head[0] > share:
            share, letters, kana, han = head
    details = {"share": round(share, 3), "min": min_share}
    if share < min_share:
        return "language", details
    if lang == "ja" and min_share > 0 and han >= CHINESE_MIN and kana == 0:
        return "language", {**details, "kana": 0, "note": "kanji without kana (Chinese?)"}
    return None


class LeakFilter:
    """The benchmark leak check of ``decontaminate`` on one text at a time: benchmark files
    and folders as ``--bench`` takes them (``NAME=PATH``); the texts stay in memory only."""

    def __init__(self, specs: list[str], bench_field: str | None = None):
        from plamo_fast.data.benchmarks import read_benchmarks
        from plamo_fast.data.decontaminate import build_index

        self.benchmarks = read_benchmarks(specs, bench_field)
        self.items = self.benchmarks.items
        self.index = build_index(self.items)

    def check_all(self, texts: list[str]) -> list[Rejection | None]:
        from plamo_fast.data.decontaminate import leaks_in_records

        found = leaks_in_records(self.index, self.items, [[("question", t)] for t in texts])
        return [_leak(matches) for matches in found]


def _leak(matches: list[dict]) -> Rejection | None:
    if not matches:
        return None
    best = matches[0]
    keys = ("benchmark", "item_id", "turn", "kind", "score")
    return "benchmark_leak", {k: best[k] for k in keys}
