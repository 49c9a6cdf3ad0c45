"""Jaster metrics and post-processing equal llm-jp-eval's definitions (jaster_metrics.py)."""

from __future__ import annotations

import random

import pytest

from plamo_fast.eval import jaster_metrics as m

# Cross-check values computed once with the peers themselves, in a throwaway virtualenv
# (fuzzywuzzy 0.18.0 + python-Levenshtein 0.27.x, rapidfuzz 3.x, scipy 1.x; llm-jp-eval's char_f1
# is fuzzywuzzy's token_sort_ratio / 100): (pred, gold, fuzzywuzzy, raw rapidfuzz). The same run
# compared our token_sort_ratio with fuzzywuzzy's on 203,000 random pairs (Japanese, ASCII,
# Latin-1, punctuation, whitespace; up to 300 characters): no difference.
FUZZYWUZZY = [
    ("東京都", "東京", 80, 80.0),
    ("ダイ・ハード", "ダイハード", 91, 90.9090909090909),
    ("Leonardo da Vinci", "leonardo di ser Piero da Vinci", 72, 51.06382978723405),
    ("北海道、本州", "本州 北海道", 100, 83.33333333333334),
    ("Café au lait", "cafe au lait", 96, 66.66666666666667),
    ("ファイナルファンタジーXIII", "ファイナルファンタジー13", 79, 78.57142857142857),
    ("、", "。", 100, 0.0),
    ("", "東京", 0, 0.0),
    ("小笠原諸島を除く日本", "小笠原諸島", 67, 66.66666666666667),
    ("abc def", "def abc", 100, 100.0),
]
# scipy.stats.pearsonr / spearmanr on llm-jp-eval's parse_float of these predictions (same venv).
STS_GOLDS = ["0.0", "1.2", "2.5", "3.8", "4.4", "5.0", "2.5"]
STS_PREDS = ["0", "1", "3.0", "4", "4", "5点", "だいたい2"]
STS_PEARSON, STS_SPEARMAN = 0.9813944630797821, 0.9818181818181818
STS_PREDS_2 = ["3", "3", "3", "x", "3", "3", "3"]
STS_PEARSON_2, STS_SPEARMAN_2 = -0.25504988572867315, -0.20597146021777488


@pytest.mark.parametrize(("pred", "gold", "fuzzywuzzy", "rapidfuzz"), FUZZYWUZZY)
def test_token_sort_ratio_equals_fuzzywuzzy(pred, gold, fuzzywuzzy, rapidfuzz):
    assert m.token_sort_ratio(pred, gold) == fuzzywuzzy


def test_char_f1_is_not_raw_rapidfuzz():
    """The preprocessing and the integer rounding matter: raw rapidfuzz would give another
    dataset score on the same predictions."""
    preds, golds = [p for p, *_ in FUZZYWUZZY], [g for _, g, *_ in FUZZYWUZZY]
    ours = m.char_f1(preds, golds)
    assert ours == pytest.approx(sum(f for *_, f, _ in FUZZYWUZZY) / 100 / len(FUZZYWUZZY))
    raw = sum(r for *_, r in FUZZYWUZZY) / 100 / len(FUZZYWUZZY)
    assert abs(ours - raw) > 0.05


def test_token_sort_ratio_rounds_half_to_even():
    # LCS 5 of 5 + 11 characters: 100 * 10 / 16 = 62.5 -> 62 (Python's round: half to even).
    assert m.token_sort_ratio("abcde", "abcdefghijk") == 62
    assert m.token_sort_ratio("abcdefg", "abcdefghi") == 88  # 14/16 = 87.5 -> 88


def test_lcs_length_matches_dynamic_programming():
    rng = random.Random(3)
    for _ in range(300):
        a = "".join(rng.choice("abc東京") for _ in range(rng.randint(0, 70)))
        b = "".join(rng.choice("abc東京") for _ in range(rng.randint(0, 70)))
        table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i, x in enumerate(a):
            for j, y in enumerate(b):
                table[i + 1][j + 1] = (
                    table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
                )
        assert m.lcs_length(a, b) == table[len(a)][len(b)]


@pytest.mark.peer
def test_token_sort_ratio_against_installed_fuzzywuzzy():
    fuzz = pytest.importorskip("fuzzywuzzy.fuzz")
    rng = random.Random(0)
    alphabet = list("abcABC xyz東京都大阪府、。・ー!?,.-_ \n\tÉéñü×½")
    for _ in range(5000):
        a = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 15)))
        b = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 15)))
        assert m.token_sort_ratio(a, b) == fuzz.token_sort_ratio(a, b), (a, b)


def test_postprocess_cuts_at_the_first_blank_line_then_nfkc_then_strips():
    assert m.postprocess(" entailment\n\nneutral") == "entailment"
    assert m.postprocess("ＡＢＣ１ ") == "ABC1"
    assert m.postprocess("\n\nanswer") == ""  # a leading blank line leaves nothing
    assert m.postprocess("東京\n大阪\n\n京都") == "東京\n大阪"
    assert m.normalize("５．０") == "5.0"


def test_exact_match():
    assert m.exact_match(["a", "b", "c", "d"], ["a", "x", "c", "D"]) == 0.5


def test_set_f1_as_llm_jp_eval_defines_it():
    # Predicted lines as a set ({"a", "b", "c"}), gold lines as a list: 2 hits.
    assert m.set_f1_item("a\nb\nc\na", "a\nb") == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))
    assert m.set_f1_item(" x \ny", "x\nz\nw") == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3))
    assert m.set_f1_item("q", "x") == 0.0
    assert m.set_f1(["a\nb", "q"], ["a\nb", "x"]) == 0.5


def test_exact_match_figure_compares_numbers():
    # W&B Nejumi's definition: float(pred) == float(gold), 0 when either is not a number.
    assert m.exact_match_figure_item("12", "12.0") == 1.0
    assert m.exact_match_figure_item("0.50", ".5") == 1.0
    assert m.exact_match_figure_item("12", "13") == 0.0
    assert m.exact_match_figure_item("1,000", "1000") == 0.0  # float() refuses the comma
    assert m.exact_match_figure_item("答えは12", "12") == 0.0
    assert m.exact_match_figure_item("nan", "nan") == 0.0
    assert m.score("exact_match_figure", ["3", "3.0", "x", "4"], ["3", "3", "3", "5"]) == 0.5
    assert m.item_scores("exact_match_figure", "7.0", "7") == 1.0


def test_parse_float():
    assert m.parse_float("5点") == 5.0
    assert m.parse_float("だいたい2.5くらい") == 2.5
    assert m.parse_float("わからない") == -2.0
    assert m.parse_float("1.2.3") == -2.0


def test_pearson_and_spearman_equal_scipy_values():
    assert m.pearson(STS_PREDS, STS_GOLDS) == pytest.approx(STS_PEARSON, abs=1e-12)
    assert m.spearman(STS_PREDS, STS_GOLDS) == pytest.approx(STS_SPEARMAN, abs=1e-12)
    assert m.pearson(STS_PREDS_2, STS_GOLDS) == pytest.approx(STS_PEARSON_2, abs=1e-12)
    assert m.spearman(STS_PREDS_2, STS_GOLDS) == pytest.approx(STS_SPEARMAN_2, abs=1e-12)


def test_undefined_correlation_counts_as_zero():
    assert m.pearson(["3"] * 7, STS_GOLDS) == 0.0  # scipy: NaN, llm-jp-eval: 0.0
    assert m.spearman(["3"] * 7, STS_GOLDS) == 0.0


def test_correlations_against_installed_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = random.Random(5)
    for _ in range(50):
        golds = [str(rng.choice([0.0, 0.4, 1.0, 2.2, 3.0, 4.6, 5.0])) for _ in range(20)]
        preds = [rng.choice(["0", "1", "2", "3", "4", "5", "x", "2.5"]) for _ in range(20)]
        gold = [float(g) for g in golds]
        parsed = [m.parse_float(p) for p in preds]
        assert m.pearson(preds, golds) == pytest.approx(stats.pearsonr(gold, parsed)[0])
        assert m.spearman(preds, golds) == pytest.approx(stats.spearmanr(gold, parsed)[0])


def test_score_refuses_an_empty_dataset():
    with pytest.raises(ValueError, match="no items"):
        m.score("exact_match", [], [])
