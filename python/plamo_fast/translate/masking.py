"""Spans a translator must not touch, masked before translation and restored after.

Masked, in this order of precedence (the leftmost match wins; at the same position, the first
kind listed): fenced code blocks (```` ``` ```` or ``~~~``, to the closing fence or the end of
the text) and indented code blocks (lines indented by four spaces or a tab after a blank line
or at the start), found line by line; then text that already looks like a sentinel, display
math ``$$...$$`` and ``\\[...\\]``, ``\\(...\\)``, inline code (any number of backticks), URLs
(``http``, ``https``, ``ftp``; ASCII URL characters, trailing ``.,;:!?'`` and unbalanced
closing brackets left out), inline math ``$...$`` (no space just inside the dollars, no digit
right after the closing one: ``$5 and $10`` is money), ``{{ jinja }}``, ``{name}`` / ``{0}`` /
``{}`` format fields, ``%s``-style printf conversions (not followed by a letter: ``50% off``
is text), special tokens ``<|...|>`` and HTML/XML tags ``<b>``, ``</think>``, ``<a href=...>``.

Each span becomes the sentinel ``⟦N⟧`` (N counts from 0 in the order of the text). Why these:
the brackets U+27E6/U+27E7 are rare in real text (so a collision is rare, and text that already
holds one is masked itself, so it still round-trips); a model sees no word in them to
translate; and unlike ``[0]``, ``{0}`` or ``<0>`` they have no full-width form that a model
writing Japanese tends to substitute (``［０］``), nor a markup meaning it may "fix".
:func:`restore` puts every span back; :func:`problems` says which sentinels did not come back
exactly once (a rejection reason of the run).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

SENTINEL = re.compile(r"⟦(\d+)⟧")

FENCE_OPEN = re.compile(r"[ \t]*(`{3,}|~{3,})")
INDENTED = re.compile(r"(?: {4}|\t)")

INLINE = re.compile(
    "|".join(
        [
            r"⟦\d+⟧",  # text that already looks like a sentinel
            r"(?s:\$\$.+?\$\$)",
            r"(?s:\\\[.+?\\\])",
            r"(?s:\\\(.+?\\\))",
            r"(?P<ticks>`+)(?!`).+?(?<!`)(?P=ticks)(?!`)",
            r"(?P<url>(?:https?|ftp)://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+)",
            r"(?<![\\$])\$(?![\s$])(?:[^$\n\\]|\\.)*?(?<![\s\\])\$(?![\d$])",
            r"\{\{[^\n]*?\}\}",
            r"\{(?:[A-Za-z_]\w*|\d+)?(?:\.\w+|\[\w+\])*(?:![rsa])?(?::[^{}\n]*)?\}",
            r"(?<!%)%(?:\(\w+\))?[-+#0]*(?:\d+|\*)?(?:\.(?:\d+|\*))?[sdifFeEgGxXoc](?![A-Za-z])",
            r"<\|[^|\n]{1,40}\|>",
            r"</?[A-Za-z][\w:.-]*(?:\s[^<>\n]*?)?\s*/?>",
        ]
    )
)
URL_TRAIL = ".,;:!?'"
CLOSERS = {")": "(", "]": "["}


def sentinel(index: int) -> str:
    return f"⟦{index}⟧"


@dataclass(frozen=True)
class Masked:
    text: str  # with sentinels
    spans: tuple[str, ...]  # spans[i] is what sentinel i stands for


def code_blocks(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each fenced or indented code block (its lines, without the line
    break after the last one)."""
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    blocks, i, after_blank = [], 0, True
    while i < len(lines):
        body = lines[i].rstrip("\r\n")
        opening = FENCE_OPEN.match(body)
        if opening:
            fence = opening.group(1)
            close = re.compile(rf"[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*")
            j = i + 1
            while j < len(lines) and not close.fullmatch(lines[j].rstrip("\r\n")):
                j += 1
            j = min(j, len(lines) - 1)
            blocks.append((starts[i], starts[j] + len(lines[j].rstrip("\r\n"))))
            i, after_blank = j + 1, False
            continue
        if after_blank and body.strip() and INDENTED.match(body):
            j = i
            while j < len(lines) and (INDENTED.match(lines[j]) or not lines[j].strip()):
                j += 1
            while not lines[j - 1].strip():  # trailing blank lines are not code
                j -= 1
            blocks.append((starts[i], starts[j - 1] + len(lines[j - 1].rstrip("\r\n"))))
            i, after_blank = j, False
            continue
        after_blank = not body.strip()
        i += 1
    return blocks


def _url_end(url: str) -> int:
    """The length of ``url`` without the punctuation that ends the sentence around it."""
    end = len(url)
    while end:
        c = url[end - 1]
        unbalanced = c in CLOSERS and url.count(CLOSERS[c], 0, end) < url.count(c, 0, end)
        if c in URL_TRAIL or unbalanced:
            end -= 1
        else:
            break
    return end


def _inline_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans = []
    for m in INLINE.finditer(text, start, end):
        stop = m.start() + _url_end(m.group()) if m.group("url") else m.end()
        if stop > m.start():
            spans.append((m.start(), stop))
    return spans


def mask(text: str) -> Masked:
    """``text`` with every span of the module text replaced by its sentinel."""
    spans: list[tuple[int, int]] = []
    prose = 0
    for start, end in code_blocks(text):
        spans += _inline_spans(text, prose, start)
        spans.append((start, end))
        prose = end
    spans += _inline_spans(text, prose, len(text))
    pieces, kept, last = [], [], 0
    for i, (start, end) in enumerate(spans):
        pieces += [text[last:start], sentinel(i)]
        kept.append(text[start:end])
        last = end
    pieces.append(text[last:])
    return Masked("".join(pieces), tuple(kept))


def problems(output: str, count: int) -> dict:
    """Sentinels of ``output`` that are not there exactly once: ``{"missing": [...],
    "repeated": [...], "unknown": [...]}`` (empty when all is well); ``count`` spans were
    masked."""
    seen = Counter(int(m) for m in SENTINEL.findall(output))
    found = {
        "missing": [i for i in range(count) if seen[i] == 0],
        "repeated": [i for i in range(count) if seen[i] > 1],
        "unknown": sorted(i for i in seen if i >= count),
    }
    return {k: v for k, v in found.items() if v}


def restore(output: str, spans: tuple[str, ...] | list[str]) -> str:
    """``output`` with each known sentinel replaced by its span (in one pass: a span that holds
    sentinel-like text is not expanded again); unknown ones are left as they are."""

    def back(m: re.Match) -> str:
        i = int(m.group(1))
        return spans[i] if i < len(spans) else m.group()

    return SENTINEL.sub(back, output)


def unmasked_length(masked: str, spans: tuple[str, ...] | list[str]) -> int:
    """The length of the text ``masked`` stands for."""
    extra = sum(len(spans[int(m.group(1))]) - len(m.group()) for m in SENTINEL.finditer(masked))
    return len(masked) + extra


def without_sentinels(masked: str) -> str:
    """The words a translator wrote: ``masked`` without its sentinels."""
    return SENTINEL.sub("", masked)
