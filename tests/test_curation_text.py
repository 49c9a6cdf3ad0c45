"""The native matching form against the reference (unicodedata) on tricky and real text (shipped
benchmark excerpts; ../shared too when present), and its spans."""

from __future__ import annotations

import json

import pytest
from curation_fixtures import BENCHMARKS, DOLLY, FIXTURE_BENCHMARKS, needs_shared

from plamo_fast import _native
from plamo_fast.reference.matching import normalize

TRICKY = [
    "Ｈｅｌｌｏ，　Ｗｏｒｌｄ！",
    "ｶﾞｷﾞｸﾞ ﾊﾟﾋﾟﾌﾟ",  # half-width kana with separate voiced marks
    "か\u3099き\u3099 は\u309a",  # decomposed kana
    "が ぱ ゔ",
    "Straße ΣΊΣΥΦΟΣ ς ﬁ ﬀ İstanbul",
    "e\u0301 a\u0300\u0323 ñ",
    "㍻ ㌔ ① ⅷ ½ ㈱",
    "tab\tnew\nline\r\nzero\u200bwidth\ufeffbom soft\u00adhyphen",
    "「…にはどうしたらいいですか？」〜ー・",
    "emoji 😀👍🏽 ⭐ ♪ € $ ¥ © ™",
    "ﾃﾞｰﾀｻｲｴﾝｽ　ﾌﾟﾛｸﾞﾗﾐﾝｸﾞ",
    "한국어 텍스트 가",
    "",
    "   ",
]


@pytest.mark.parametrize("text", TRICKY)
def test_native_equals_reference(text):
    assert _native.normalize_text(text) == normalize(text)


@pytest.mark.parametrize("text", TRICKY)
def test_spans_map_each_character_back_to_its_source(text):
    form, spans = _native.normalize_with_spans(text)
    assert len(spans) == len(form)
    for char, (start, end) in zip(form, spans, strict=True):
        assert 0 <= start < end <= len(text)
        assert char in normalize(text[start:end])
    assert [s for s, _ in spans] == sorted(s for s, _ in spans)


def assert_native_equals_reference(texts: list[str]) -> None:
    mismatches = [t for t in texts if _native.normalize_text(t) != normalize(t)]
    assert not mismatches, mismatches[:3]


def test_native_equals_reference_on_real_text():
    """The shipped benchmark excerpts (tests/fixtures/benchmarks): every turn, and every line
    as written (JSON with escapes and keys)."""
    texts = []
    for path in sorted(FIXTURE_BENCHMARKS.rglob("*.jsonl")):
        lines = path.read_text(encoding="utf-8").splitlines()
        texts += lines + [turn for line in lines for turn in json.loads(line)["turns"]]
    assert len(texts) > 300
    assert_native_equals_reference(texts)


@needs_shared
def test_native_equals_reference_on_shared_text():
    texts = []
    with open(DOLLY, encoding="utf-8") as f:
        for n, line in enumerate(f):
            if n >= 3000:
                break
            record = json.loads(line)
            texts += [record["instruction"], record["input"], record["output"]]
    for path in sorted(BENCHMARKS.rglob("*.jsonl")):
        texts += path.read_text(encoding="utf-8").splitlines()
    assert_native_equals_reference(texts)
