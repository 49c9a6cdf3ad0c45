"""Writing systems in a text: how much of it is in a language's script. Used by the language
filters of ``synth instruct`` and ``translate``."""

from __future__ import annotations

import re
import unicodedata

# Code (fenced blocks, inline code) is left out: it is Latin whatever the prose's language.
CODE = re.compile(r"```.*?(```|$)|`[^`\n]*`", re.DOTALL)
KANA = re.compile(r"[\u3041-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f\u3005\u3006]")
LATIN = re.compile(r"[A-Za-z\u00c0-\u024f\uff21-\uff3a\uff41-\uff5a]")


def script_share(text: str, lang: str) -> tuple[float, int, int, int]:
    """``(share, letters, kana, han)``: the share of ``lang``'s script (kana and kanji for
    ``ja``, Latin letters otherwise) among the letters of ``text`` outside code (1.0 for a text
    without letters)."""
    prose = CODE.sub(" ", text)
    letters = sum(1 for c in prose if unicodedata.category(c)[0] == "L")
    kana, han = len(KANA.findall(prose)), len(HAN.findall(prose))
    own = kana + han if lang == "ja" else len(LATIN.findall(prose))
    return (own / letters if letters else 1.0), letters, kana, han
