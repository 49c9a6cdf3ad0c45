"""Benchmark: the ROUGE-L novelty filter of ``synth instruct`` against rouge-score as
Self-Instruct uses it, on Japanese instructions added one by one to a growing pool.

The stream: Dolly-ja instructions (``../shared/corpora/databricks-dolly-15k-ja``, when present)
and synthetic Japanese instructions (templates over topics, tasks and constraints), a quarter of
them near-duplicates of an earlier one (a few characters edited, a politeness or length phrase
added or dropped), as a model's drafts are. Each is passed to ``add_if_novel`` (ROUGE-L F1 on
characters against every kept instruction; rejected above 0.7).

The peer is Self-Instruct's filter made to score Japanese: ``rouge_scorer.RougeScorer(["rougeL"],
tokenizer=...)`` with a character tokenizer, each candidate scored against every kept
instruction with ``multiprocessing.Pool(nproc).map(partial(scorer.score, candidate), kept)``,
rejected when the best fmeasure is above 0.7. The full peer run would take hours, so it runs on
the first ``--peer`` candidates only; its decisions, scores and indices are checked equal to
ours there, and its time over the full stream is extrapolated from its measured seconds per
pair times the pairs of the full stream (the candidate × kept comparisons a brute force makes),
printed as an extrapolation. The same-subset ratio is printed too.

    .venv/bin/python benches/bench_novelty.py
    .venv/bin/python benches/bench_novelty.py -n 50000 --peer 1000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shlex
import statistics
import sys
import time
from functools import partial
from pathlib import Path

from bench_common import git_commit, machine_info, package_version, print_header

from plamo_fast import __version__
from plamo_fast.synth.novelty import NoveltyFilter

REPO = Path(__file__).resolve().parent.parent
DOLLY = REPO.parent / "shared/corpora/databricks-dolly-15k-ja/databricks-dolly-15k-ja.jsonl"

TOPICS = [
    "地球温暖化",
    "日本の歴史",
    "量子コンピュータ",
    "健康的な食事",
    "リモートワーク",
    "俳句",
    "富士山",
    "人工知能",
    "プログラミング学習",
    "節約術",
    "睡眠の質",
    "宇宙探査",
    "茶道",
    "再生可能エネルギー",
    "子育て",
    "読書習慣",
    "外国語の勉強",
    "京都の観光",
    "猫の飼い方",
    "株式投資",
    "災害への備え",
    "スマートフォン",
    "マラソン",
    "和食の調理",
    "電気自動車",
    "江戸時代の文化",
    "深海の生き物",
    "音楽理論",
    "写真撮影",
    "時間管理",
    "プレゼンテーション",
    "ボランティア活動",
    "気候変動と農業",
    "SNSの使い方",
    "小説の書き方",
    "数学の勉強法",
    "就職活動",
    "ゴミの分別",
    "家庭菜園",
    "登山の準備",
    "インフルエンザ予防",
    "城の建築",
]
TASKS = [
    "{t}について簡単に説明してください。",
    "{t}の長所と短所を三つずつ挙げてください。",
    "{t}に関する初心者向けのアドバイスを五つ書いてください。",
    "{t}をテーマにした短い物語を書いてください。",
    "{t}について小学生にもわかるように説明して。",
    "{t}に関するよくある誤解を挙げ、それぞれ訂正してください。",
    "{t}について議論するためのディベートの論点を整理してください。",
    "{t}を始めるための一週間の計画を立ててください。",
    "{t}に関するクイズを三問作り、答えも付けてください。",
    "{t}の重要性を説得力のある文章で述べてください。",
    "{t}について友人に送るメールの文面を考えて。",
    "{t}の歴史を年表形式でまとめてください。",
    "{t}と{u}の共通点と違いを比較してください。",
    "{t}に詳しい専門家にインタビューするとしたら、どんな質問をしますか？",
    "{t}についてのブログ記事の見出しを十個提案してください。",
    "次の文章を要約してください：{t}は近年注目を集めている。",
    "{t}に関連するキーワードを使って俳句を詠んでください。",
    "{t}に関する失敗談とそこから学べる教訓を書いてください。",
]
CONSTRAINTS = [
    "",
    "",
    "",
    "200字以内で。",
    "箇条書きで答えてください。",
    "丁寧な敬語で書いてください。",
    "専門用語を使わずに。",
    "具体例を交えて。",
    "高校生向けに。",
    "ユーモアを交えて。",
    "三段落で書いてください。",
    "結論から先に述べてください。",
]
PERSONAS = [
    "",
    "",
    "",
    "あなたは旅行ガイドです。",
    "あなたは経験豊富な教師として、",
    "営業担当者の立場で、",
    "医師の視点から、",
    "中学生の私に、",
    "新入社員向けの研修資料として、",
    "祖母に話すつもりで、",
    "海外からの留学生に向けて、",
    "忙しい社会人のために、",
]
PHRASES = ["できるだけ詳しく", "簡潔に", "わかりやすく", "お願いします。", "ください", "して"]


def synthetic(rng: random.Random) -> str:
    topic, other = rng.sample(TOPICS, 2)
    text = rng.choice(PERSONAS) + rng.choice(TASKS).format(t=topic, u=other)
    return text + "".join(rng.sample(CONSTRAINTS, rng.randint(0, 2)))


def near_duplicate(rng: random.Random, text: str) -> str:
    """A draft close to ``text``: a few characters edited, or a phrase added or dropped."""
    if rng.random() < 0.4:
        phrase = rng.choice(PHRASES)
        return text.replace(phrase, "", 1) if phrase in text else text + phrase
    chars = list(text)
    pool = "のがをにはでとへもやかなるすたいうえおアイ文書説明"
    for _ in range(rng.randint(1, max(1, len(chars) // 8))):
        k = rng.randrange(len(chars))
        move = rng.random()
        if move < 0.35:
            del chars[k]
        elif move < 0.7:
            chars.insert(k, rng.choice(pool))
        else:
            chars[k] = rng.choice(pool)
        if not chars:
            chars = list(text)
    return "".join(chars)


def dolly_instructions() -> list[str]:
    if not DOLLY.is_file():
        return []
    with DOLLY.open(encoding="utf-8") as f:
        return [r["instruction"] for r in map(json.loads, f) if r["instruction"].strip()]


def instructions(n: int, seed: int) -> tuple[list[str], str]:
    """``n`` candidates and a description of where they came from."""
    rng = random.Random(seed)
    dolly = dolly_instructions()
    rng.shuffle(dolly)
    stream: list[str] = []
    fresh = 0
    for _ in range(n):
        if stream and rng.random() < 0.25:
            stream.append(near_duplicate(rng, rng.choice(stream[-2000:])))
            continue
        # Dolly-ja and synthetic interleaved while Dolly lasts, then synthetic only.
        use_dolly = fresh < len(dolly) and rng.random() < 0.5
        stream.append(dolly[fresh] if use_dolly else synthetic(rng))
        fresh += use_dolly
    source = (
        f"{fresh:,} Dolly-ja + {n - fresh:,} synthetic/near-duplicate"
        if dolly
        else ("synthetic only (Dolly-ja absent)")
    )
    return stream, source


def ours(stream: list[str], threshold: float) -> tuple[float, float, list[tuple[bool, float, int]]]:
    """(wall s, CPU s, verdicts) of add_if_novel over the stream, one call per candidate."""
    novelty = NoveltyFilter(threshold, "char")
    started, cpu = time.perf_counter(), time.process_time()
    verdicts = [novelty.add_if_novel(text) for text in stream]
    return time.perf_counter() - started, time.process_time() - cpu, verdicts


class CharTokenizer:
    """Every non-space character: what rouge-score needs to score Japanese at all."""

    def tokenize(self, text: str) -> list[str]:
        return [c for c in text if not c.isspace()]


def peer(stream: list[str], threshold: float, workers: int) -> tuple[float, list, int]:
    """Self-Instruct's loop: (wall s, verdicts, pairs scored)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False, tokenizer=CharTokenizer())
    kept: list[str] = []
    verdicts, pairs = [], 0
    started = time.perf_counter()
    with multiprocessing.Pool(workers) as pool:
        for text in stream:
            scores = [s["rougeL"].fmeasure for s in pool.map(partial(scorer.score, text), kept)]
            pairs += len(kept)
            best = max(scores, default=0.0)
            index = scores.index(best) if best > 0 else -1
            verdicts.append((best <= threshold, best, index))
            if best <= threshold:
                kept.append(text)
    return time.perf_counter() - started, verdicts, pairs


def brute_force_pairs(verdicts: list[tuple[bool, float, int]]) -> int:
    """Comparisons a brute force makes: each candidate against every text kept before it."""
    kept = pairs = 0
    for novel, _, _ in verdicts:
        pairs += kept
        kept += novel
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=50_000)
    parser.add_argument("--peer", type=int, default=1000, help="Candidates the peer runs on.")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    workers = len(os.sched_getaffinity(0))
    command = "python benches/bench_novelty.py " + shlex.join(sys.argv[1:])
    versions = {
        "plamo-fast": f"{__version__} ({git_commit(REPO)})",
        "rouge-score": package_version(sys.executable, "rouge-score"),
    }
    print_header(command, machine_info(), versions)
    stream, source = instructions(args.n, args.seed)
    lengths = sorted(len(t) for t in stream)
    print(
        f"stream: {len(stream):,} candidates ({source}), median {lengths[len(lengths) // 2]} "
        f"characters, max {lengths[-1]}"
    )

    walls, cpus = [], []
    for k in range(args.repeat):
        wall, cpu, verdicts = ours(stream, args.threshold)
        walls.append(wall)
        cpus.append(cpu)
        kept = sum(v[0] for v in verdicts)
        print(
            f"plamo-fast run {k + 1}: wall {wall:.2f} s, CPU {cpu:.2f} s, kept {kept:,} of "
            f"{len(stream):,}"
        )
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    pairs = brute_force_pairs(verdicts)
    print(
        f"plamo-fast median: wall {wall:.2f} s ({len(stream) / wall:,.0f} candidates/s, "
        f"{pairs / wall / 1e6:,.1f} M pairs/s over {pairs:,} brute-force pairs), CPU {cpu:.2f} s"
    )

    subset = stream[: args.peer]
    sub_wall, _, sub_verdicts = ours(subset, args.threshold)
    peer_wall, peer_verdicts, peer_pairs = peer(subset, args.threshold, workers)
    assert sub_verdicts == verdicts[: args.peer]
    same = sum(a == b for a, b in zip(peer_verdicts, sub_verdicts, strict=True))
    decisions = sum(a[0] == b[0] for a, b in zip(peer_verdicts, sub_verdicts, strict=True))
    print(
        f"rouge-score (Pool({workers}), character tokenizer) on the first {len(subset):,} "
        f"candidates: wall {peer_wall:.2f} s for {peer_pairs:,} pairs "
        f"({peer_wall / max(peer_pairs, 1) * 1e6:.1f} µs/pair); plamo-fast on the same subset "
        f"{sub_wall:.3f} s; ratio on the subset {peer_wall / sub_wall:,.0f}x"
    )
    print(
        f"same decisions on the subset: {decisions:,}/{len(subset):,}; same (decision, score, "
        f"index): {same:,}/{len(subset):,}; rejected there: "
        f"{sum(not v[0] for v in peer_verdicts):,}"
    )
    estimate = peer_wall / max(peer_pairs, 1) * pairs
    print(
        f"rouge-score on all {len(stream):,} (EXTRAPOLATED from its µs/pair on the subset x "
        f"{pairs:,} pairs): {estimate:,.0f} s = {estimate / 3600:.1f} h; "
        f"ratio {estimate / wall:,.0f}x (plamo-fast median wall, measured)"
    )
    if decisions != len(subset):
        sys.exit("decisions differ from rouge-score")


if __name__ == "__main__":
    main()
