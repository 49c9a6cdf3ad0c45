"""Long texts split into chunks of at most ``max_chars`` characters, translated in order and
joined with the original separators.

The text is masked first (:func:`plamo_fast.translate.masking.mask`), so that no split falls
inside a code block, a URL, a formula or a placeholder: a code block longer than the limit is a
chunk of its own, whole. The masked text is split at paragraph boundaries (blank lines), pieces
still too long at line breaks, then at sentence ends (``。！？`` and ``.!?`` followed by a space),
and as a last resort at the last space that fits, else between characters (never inside a
sentinel); neighbouring pieces are then joined back while they fit. Lengths count the
characters of the original text. Every separator (the whitespace around line breaks, the space
after a sentence) is kept as it was, and so is the whitespace at both ends of the text: the
translation of chunk i, then separator i, and so on.
Each chunk numbers its own sentinels from 0 (so the same chunk in another text is the same
request, a cache hit).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from plamo_fast.translate.masking import SENTINEL, mask, restore, sentinel, unmasked_length

PARAGRAPH = re.compile(r"[ \t]*\n(?:[ \t]*\n)+[ \t]*")
LINE = re.compile(r"[ \t]*\n[ \t]*")
SENTENCE = re.compile(r"(?<=[。！？])[ \t]*|(?<=[.!?])[ \t]+")
LEVELS = (PARAGRAPH, LINE, SENTENCE)


@dataclass(frozen=True)
class Chunk:
    masked: str  # sent to the model; its sentinels numbered from 0
    spans: tuple[str, ...]
    after: str  # the separator that follows it in the text

    @property
    def source(self) -> str:
        return restore(self.masked, self.spans)

    @property
    def needs_model(self) -> bool:
        """False when there is nothing to translate (only masked spans, digits, punctuation)."""
        return any(unicodedata.category(c)[0] == "L" for c in SENTINEL.sub("", self.masked))


@dataclass(frozen=True)
class Split:
    before: str  # the whitespace before the first chunk
    chunks: tuple[Chunk, ...]

    def join(self, translations: list[str]) -> str:
        """The text with chunk i replaced by ``translations[i]``."""
        parts = [self.before]
        for chunk, text in zip(self.chunks, translations, strict=True):
            parts += [text, chunk.after]
        return "".join(parts)


def split_text(text: str, max_chars: int) -> Split:
    """``text`` in chunks (see the module text); ``Split.join`` of the chunks' sources gives it
    back."""
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    masked = mask(text)
    body = masked.text.strip()
    if not body:
        return Split(masked.text, ())
    before = masked.text[: len(masked.text) - len(masked.text.lstrip())]
    trailing = masked.text[len(before) + len(body) :]

    def size(piece: str) -> int:
        return unmasked_length(piece, masked.spans)

    pieces = _split(body, max_chars, size, LEVELS)
    pieces[-1] = (pieces[-1][0], pieces[-1][1] + trailing)
    return Split(before, tuple(_local(piece, after, masked.spans) for piece, after in pieces))


def _split(text: str, limit: int, size, levels) -> list[tuple[str, str]]:
    """``[(piece, separator after it)]`` of ``text``, each piece at most ``limit`` long where
    the boundaries allow."""
    if size(text) <= limit:
        return [(text, "")]
    if not levels:
        return _cut(text, limit, size)
    units: list[tuple[str, str]] = []
    last = 0
    for m in levels[0].finditer(text):
        if m.start() == last and units:  # nothing between two separators
            units[-1] = (units[-1][0], units[-1][1] + m.group())
        elif m.start() > last or not units:
            units.append((text[last : m.start()], m.group()))
        last = m.end()
    units.append((text[last:], ""))
    if units[-1][0] == "" and len(units) > 1:
        tail = units.pop()
        units[-1] = (units[-1][0], units[-1][1] + tail[1])
    pieces: list[tuple[str, str]] = []
    for unit, sep in units:
        parts = _split(unit, limit, size, levels[1:])
        parts[-1] = (parts[-1][0], parts[-1][1] + sep)
        pieces += parts
    return _merge(pieces, limit, size)


def _merge(pieces: list[tuple[str, str]], limit: int, size) -> list[tuple[str, str]]:
    merged = [pieces[0]]
    for piece, sep in pieces[1:]:
        last, last_sep = merged[-1]
        joined = last + last_sep + piece
        if size(joined) <= limit:
            merged[-1] = (joined, sep)
        else:
            merged.append((piece, sep))
    return merged


def _cut(text: str, limit: int, size) -> list[tuple[str, str]]:
    """Pieces of at most ``limit`` characters, cut at the last space that keeps a piece within
    it, else between characters (a sentinel is never cut; a longer one is a piece of its own);
    whitespace at a cut goes to the separator."""
    atoms = [(m.group(), size(m.group())) for m in re.finditer(r"⟦\d+⟧|.", text, re.S)]
    pieces, current, length = [], [], 0
    for atom, width in atoms:
        if current and length + width > limit:
            cut = len(current)  # before a space that does not fit, or between characters
            if not atom.isspace():  # after the last space, if there is one
                spaces = [j + 1 for j, (a, _) in enumerate(current) if j and a.isspace()]
                cut = spaces[-1] if spaces else cut
            pieces.append("".join(a for a, _ in current[:cut]))
            current = current[cut:]
            length = sum(w for _, w in current)
            if current and length + width > limit:
                pieces.append("".join(a for a, _ in current))
                current, length = [], 0
        current.append((atom, width))
        length += width
    pieces.append("".join(a for a, _ in current))
    out: list[tuple[str, str]] = []
    for piece in pieces:
        stripped = piece.rstrip()
        if out and not stripped.strip():
            out[-1] = (out[-1][0], out[-1][1] + piece)
            continue
        lead = stripped[: len(stripped) - len(stripped.lstrip())]
        if out:
            out[-1] = (out[-1][0], out[-1][1] + lead)
        out.append((stripped.lstrip(), piece[len(stripped) :]))
    return out


def _local(piece: str, after: str, spans: tuple[str, ...]) -> Chunk:
    """A chunk whose sentinels are renumbered from 0."""
    local: list[str] = []

    def renumber(m: re.Match) -> str:
        local.append(spans[int(m.group(1))])
        return sentinel(len(local) - 1)

    return Chunk(SENTINEL.sub(renumber, piece), tuple(local), after)
