"""Run by FastChat 0.2.36's own virtualenv (not by pytest): FastChat's own code on the files
given, printed as one JSON object.

    python fastchat_peer.py show_result JUDGMENTS          -> {"turn_1": {model: mean}, ...}
    python fastchat_peer.py prompts SPEC.json              -> [{"messages": [...]}, ...]

``show_result`` calls ``llm_judge/show_result.py``'s ``display_result_single`` and captures the
DataFrames it prints. ``prompts`` calls ``llm_judge/common.py``'s ``run_judge_single`` for each
match of SPEC (questions, answers, references and judge prompt files, the judge prompt name and
multi-turn flag per match), capturing the messages it would send to the OpenAI judge: the
``openai`` client is replaced by a recorder, and ``fastchat.model.model_adapter`` (which imports
torch) by the two names common.py takes from it, returning the ``chatgpt`` conversation template
that FastChat's adapter returns for an OpenAI judge."""

import argparse
import json
import sys
import types

import openai
from fastchat.conversation import get_conv_template

adapter = types.ModuleType("fastchat.model.model_adapter")
adapter.get_conversation_template = lambda model: get_conv_template("chatgpt")
adapter.OPENAI_MODEL_LIST = ("gpt-4",)
adapter.ANTHROPIC_MODEL_LIST = ()
sys.modules["fastchat.model.model_adapter"] = adapter

from fastchat.llm_judge import common, show_result  # noqa: E402

SENT = []


def _create(**kwargs):
    SENT.append(kwargs["messages"])
    return {"choices": [{"message": {"content": "Rating: [[5]]"}}]}


openai.ChatCompletion.create = _create


def run_show_result(path):
    frames = []
    show_result.print = lambda *a, **k: frames.extend(x for x in a if hasattr(x, "to_dict"))
    args = argparse.Namespace(
        input_file=path, bench_name="mt_bench", judge_model="gpt-4", model_list=None
    )
    show_result.display_result_single(args)
    turn_1, turn_2, average = frames
    return {
        "turn_1": {m: s for (m, _), s in turn_1["score"].to_dict().items()},
        "turn_2": {m: s for (m, _), s in turn_2["score"].to_dict().items()},
        "average": average["score"].to_dict(),
    }


def _by_id(path):
    with open(path) as f:
        return {r["question_id"]: r for r in map(json.loads, f)}


def run_prompts(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    prompts = common.load_judge_prompts(spec["judge_prompts"])
    questions = {q["question_id"]: q for q in common.load_questions(spec["questions"], None, None)}
    answers = _by_id(spec["answers"])
    refs = _by_id(spec["references"]) if spec.get("references") else {}
    out = []
    for match in spec["matches"]:
        qid, name, multi = match["question_id"], match["prompt"], match["multi_turn"]
        judge = common.Judge("gpt-4", prompts[name], ref_based="math" in name, multi_turn=multi)
        ref = refs[qid] if judge.ref_based else None
        SENT.clear()
        score, user_prompt, judgment = common.run_judge_single(
            questions[qid], answers[qid], judge, ref, multi_turn=multi
        )
        out.append({"messages": SENT[0], "user_prompt": user_prompt})
    return out


if __name__ == "__main__":
    command, path = sys.argv[1], sys.argv[2]
    result = run_show_result(path) if command == "show_result" else run_prompts(path)
    print(json.dumps(result, ensure_ascii=False))
