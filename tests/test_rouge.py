"""ROUGE-L of the novelty filter (rust/core/src/rouge.rs): tokens and scores equal to the
readable reference and to rouge-score (words, and characters through a custom tokenizer), the
filter's verdicts equal to comparing every pool text, the threshold edge, the API."""

from __future__ import annotations

import random

import pytest

from plamo_fast.reference import rouge as reference
from plamo_fast.synth.novelty import NoveltyFilter, rouge_l, tokens

JAPANESE = (
    "日本語の文章を書いてくださいあいうえおかきくけこアイウエオ東京大阪猫犬山川ｱｲｳ々〜、。「」？！"
)
ENGLISH = "abcdefghij ABCDEF 0123 the of a to"
# Characters that test the rules' corners: Unicode whitespace, the separators U+001C..U+001F
# (tokens here, unlike str.isspace), İ and the Kelvin sign (lowercase to ASCII), full-width
# letters (not ASCII words), punctuation.
ODD = " \t\n\u3000\u00a0\u2009\u001c\u001fİKＡｂ１-'.,!?é"
WORDS = ["cat", "dog", "the", "a", "write", "poem", "about", "list", "three", "ideas", "2024"]


def random_text(rng: random.Random, alphabet: str, length: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def random_words(rng: random.Random, length: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(length))


def text_cases(rng: random.Random) -> list[str]:
    """Japanese, English, mixed, odd characters, empty, one token, and long (> 64 and > 128
    tokens: the multiword LCS)."""
    cases = ["", " ", "猫", "cat", "İ", "\u001c"]
    for alphabet in (JAPANESE, ENGLISH, JAPANESE + ENGLISH, ODD + "ab日", JAPANESE[:6]):
        for length in (1, 3, 10, 40, 70, 150):
            cases.append(random_text(rng, alphabet, length))
    cases += [random_words(rng, n) for n in (1, 5, 30, 80, 140)]
    return cases


@pytest.mark.parametrize("unit", ["char", "word", "auto"])
def test_tokens_equal_the_reference(unit):
    rng = random.Random(1)
    for text in text_cases(rng):
        assert tokens(text, unit) == reference.tokens(text, unit), repr(text)


def test_token_rules():
    assert tokens("日本 語\u3000だ", "char") == ["日", "本", "語", "だ"]
    assert tokens("Don't stop-2 İx ＡB", "word") == ["don", "t", "stop", "2", "i", "x", "b"]
    assert tokens("日本語で", "word") == []  # word tokens drop non-ASCII: why Japanese uses char
    assert tokens("日本語 is fun", "auto") == list("日本語isfun")
    assert tokens("Is it fun?", "auto") == ["is", "it", "fun"]
    with pytest.raises(ValueError, match="unit must be"):
        tokens("a", "chars")


@pytest.mark.parametrize("unit", ["char", "word", "auto"])
def test_rouge_l_equals_the_reference(unit):
    rng = random.Random(2)
    cases = text_cases(rng)
    pairs = [(a, b) for a in cases for b in rng.sample(cases, 8)]
    # Near pairs: one text and an edited copy, long ones included.
    for a in cases:
        b = list(a)
        for _ in range(max(1, len(b) // 8)):
            if b:
                b[rng.randrange(len(b))] = rng.choice(JAPANESE + ENGLISH)
        pairs.append((a, "".join(b)))
    for a, b in pairs:
        expected = reference.rouge_l(a, b, unit)
        assert rouge_l(a, b, unit) == expected, (a, b)
        assert rouge_l(b, a, unit) == expected  # symmetric, bit for bit


def test_auto_uses_characters_when_either_text_is_japanese():
    assert rouge_l("abc", "abc", "auto") == 1.0
    # "ab 猫" vs "ab": characters a, b, 猫 vs a, b (in words, "ab" vs "ab" would score 1).
    assert rouge_l("ab 猫", "ab", "auto") == reference.f1(2, 3, 2)
    assert rouge_l("ab 猫", "ab", "word") == 1.0


class CharTokenizer:
    """A tokenizer object for rouge-score (``RougeScorer(tokenizer=...)`` calls ``tokenize``):
    every non-space character, as a Self-Instruct port for Japanese would use."""

    def tokenize(self, text: str) -> list[str]:
        return [c for c in text if not c.isspace()]


def rouge_score_peer(tokenizer=None):
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False, tokenizer=tokenizer)
    return lambda a, b: scorer.score(a, b)["rougeL"].fmeasure


@pytest.mark.peer
def test_words_equal_rouge_score():
    peer = rouge_score_peer()
    rng = random.Random(3)
    cases = text_cases(rng) + [random_words(rng, rng.randint(1, 90)) for _ in range(60)]
    for a in cases:
        for b in rng.sample(cases, 10):
            assert abs(rouge_l(a, b, "word") - peer(a, b)) <= 1e-9, (a, b)
            assert rouge_l(a, b, "word") == peer(a, b)


@pytest.mark.peer
def test_characters_equal_rouge_score_with_a_character_tokenizer():
    peer = rouge_score_peer(CharTokenizer())
    rng = random.Random(4)
    # str.isspace also counts U+001C..U+001F, which the rule keeps as tokens: left out here.
    alphabet = (JAPANESE + ENGLISH + ODD).replace("\u001c", "").replace("\u001f", "")
    cases = [random_text(rng, alphabet, rng.randint(0, 160)) for _ in range(80)]
    cases += [random_text(rng, JAPANESE[:8], rng.randint(1, 100)) for _ in range(40)]
    for a in cases:
        for b in rng.sample(cases, 10):
            assert abs(rouge_l(a, b, "char") - peer(a, b)) <= 1e-9, (a, b)
            assert rouge_l(a, b, "char") == peer(a, b)
    # Japanese in rouge-score's own tokenizer: every pair scores 0 (Self-Instruct's blind spot).
    assert rouge_score_peer()("日本の首都は？", "日本の首都は？") == 0.0


def near_duplicates(rng: random.Random, n: int) -> list[str]:
    """Japanese, English and mixed instructions, many of them edits of earlier ones."""
    subjects = ["猫", "東京", "富士山", "量子計算", "味噌汁", "the moon", "Python", "俳句"]
    frames = [
        "{}について短い説明を書いてください。",
        "{}の歴史を三行で要約して。",
        "Write a short poem about {}.",
        "List three facts about {} and explain why.",
        "{}に関するクイズを五問作ってください",
    ]
    texts: list[str] = []
    for _ in range(n):
        if texts and rng.random() < 0.5:
            chars = list(rng.choice(texts))
            for _ in range(rng.randint(0, 4)):
                k = rng.randrange(len(chars) + 1)
                choice = rng.random()
                if choice < 0.4 and k < len(chars):
                    del chars[k]
                elif choice < 0.7:
                    chars.insert(k, rng.choice(JAPANESE + " abc"))
                elif k < len(chars):
                    chars[k] = rng.choice(JAPANESE + "xyz")
            texts.append("".join(chars))
        else:
            text = rng.choice(frames).format(rng.choice(subjects))
            if rng.random() < 0.15:
                text += random_text(rng, JAPANESE, rng.randint(50, 90))  # long: multiword
            texts.append(text)
    return texts


@pytest.mark.parametrize(("unit", "threshold"), [("auto", 0.7), ("char", 0.7), ("word", 0.5)])
def test_filter_equals_brute_force(unit, threshold):
    rng = random.Random(5)
    seeds = near_duplicates(rng, 20)
    texts = near_duplicates(rng, 300)
    expected = reference.novelty_filter(texts, threshold, unit, seeds=seeds)
    one_by_one, batch = NoveltyFilter(threshold, unit), NoveltyFilter(threshold, unit)
    for seed in seeds:
        one_by_one.add(seed)
        batch.add(seed)
    assert [one_by_one.add_if_novel(t) for t in texts] == expected
    assert batch.filter(texts) == expected
    kept = seeds + [t for t, v in zip(texts, expected, strict=True) if v[0]]
    assert one_by_one.texts == batch.texts == kept
    assert len(batch) == len(kept)
    assert 0 < sum(not v[0] for v in expected) < len(texts)  # both decisions occur


def test_parallel_scan_over_a_large_pool_is_exact():
    """A pool of several parallel chunks (2,048 texts each): exact best and first index."""
    rng = random.Random(6)
    pool = [random_text(rng, JAPANESE[:20], rng.randint(3, 12)) for _ in range(5000)]
    pool[1500] = "東京の猫について書いてください"
    pool[4321] = pool[1500]  # a tie across parallel chunks: the first index wins
    novelty = NoveltyFilter(0.7, "char")
    for text in pool:
        novelty.add(text)
    queries = ["東京の猫について書いて", "日本語の文章", "猫", "ｱｲｳ", "zzz"]
    queries += [random_text(rng, JAPANESE[:20], 8) for _ in range(3)]
    for query in queries:
        assert novelty.check(query) == reference.check(pool, query, 0.7, "char"), query
    assert novelty.check("東京の猫について書いて")[2] == 1500


def test_threshold_edge_follows_rouge_scores_arithmetic():
    a = "あいうえおかきくけこ"
    assert rouge_l(a, "あいうえおかきたちつ") == 0.7  # LCS 7 of 10 and 10
    novelty = NoveltyFilter(0.7)
    novelty.add(a)
    assert novelty.check("あいうえおかきたちつ") == (True, 0.7, 0)  # exactly 0.7 is novel
    assert NoveltyFilter(0.69).check(a) == (True, 0.0, -1)  # empty pool
    # LCS 7 of 9 and 11 is 0.7 in exact arithmetic but 0.7000000000000001 in rouge-score's
    # formula (2pr / (p + r)): rejected there, so rejected here too.
    nine, eleven = "あいうえおかきくけ", "あいうえおかきたちつて"
    assert rouge_l(nine, eleven) == reference.f1(7, 9, 11) > 0.7
    novelty = NoveltyFilter(0.7)
    novelty.add(nine)
    assert novelty.check(eleven) == (False, reference.f1(7, 9, 11), 0)


def test_check_does_not_add_and_index_is_minus_one_without_common_tokens():
    novelty = NoveltyFilter()
    novelty.add("猫が好き")
    assert novelty.check("猫が好き") == (False, 1.0, 0)
    assert len(novelty) == 1
    assert novelty.check("hello world") == (True, 0.0, -1)  # char unit, no shared character
    assert novelty.check("") == (True, 0.0, -1)
    assert novelty.add_if_novel("猫は犬が嫌い") == (True, reference.f1(2, 6, 4), 0)
    assert novelty.add_if_novel("猫が好き!") == (False, reference.f1(4, 5, 4), 0)
    assert novelty.texts == ["猫が好き", "猫は犬が嫌い"]
    assert novelty.text(1) == "猫は犬が嫌い"  # what a rejection's nearest index names


def test_bad_arguments():
    with pytest.raises(ValueError, match="unit must be"):
        NoveltyFilter(0.7, "chars")
    with pytest.raises(ValueError, match="threshold must be in"):
        NoveltyFilter(1.5)
    with pytest.raises(ValueError, match="threshold must be in"):
        NoveltyFilter(float("nan"))
    with pytest.raises(TypeError):
        NoveltyFilter().add(3)  # type: ignore[arg-type]
