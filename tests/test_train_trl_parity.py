"""Parity of the DPO loss with the peer, TRL 1.16's DPOTrainer, run from its own virtualenv
(tests/trl_dpo_peer.py) on the same policy, reference and preference pairs.

The peer runs through PLAMO_FAST_TRL_PYTHON, ~/.cache/plamo-fast/trl-1.16, or this interpreter
when TRL is installed in it (the [dev] extra); the test is skipped (not failed) without TRL.

Our side is what ``DPOObjective.step`` computes: the pairs packed by ``plamo-fast pack --kind
dpo``, one micro-batch of every row, per-document log-probs of the trained tokens, mean loss over
the pairs. TRL's side is ``DPOTrainer.compute_loss`` on one batch of every pair.

What each side trains differs in one token: TRL trains the whole rendered completion (what
follows the prompt rendered with ``add_generation_prompt``), so with ChatML it also trains the
``\\n`` the template writes after the final ``<|im_end|>``; our packer trains the assistant turn up
to its end-of-turn token. So the parity is checked on a ChatML variant that ends the conversation
at ``<|im_end|>`` (the two sides then train the same tokens), and on ChatML itself the test pins
that the only difference is that last token: counting it on our side gives TRL's numbers.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from chat_fixtures import CHATML
from train_fixtures import DPO_RECORDS, packed, tiny_model, torch

pytestmark = pytest.mark.peer

CANDIDATES = [
    os.environ.get("PLAMO_FAST_TRL_PYTHON", ""),
    str(Path.home() / ".cache/plamo-fast/trl-1.16/bin/python"),
]
PEER = Path(__file__).parent / "trl_dpo_peer.py"

# ChatML, except that the final message is not followed by a newline: the rendered conversation
# ends with the last assistant turn's <|im_end|>, which is where our packer's trained span ends.
CHATML_NO_FINAL_NEWLINE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>'}}{% if not loop.last %}{{ '\\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '\\n<|im_start|>assistant\\n' }}{% endif %}"
)
TEMPLATES = {"aligned": CHATML_NO_FINAL_NEWLINE, "chatml": CHATML}
LOSSES = [("sigmoid", 0.1), ("ipo", 0.1)]
RECORDS = DPO_RECORDS[:4]  # the distinct pairs (DPO_RECORDS repeats them)
# Room for two pairs per row, so that documents start inside rows and later pairs in a row would
# see earlier ones if the packed attention leaked across documents.
PACK_LENGTH = 160
NOISE = 0.3  # std of the seeded noise that turns the reference into the policy
# Models whose config asks for dropout, trained by both sides with DPO's default
# disable_dropout. TRL's switch zeroes nn.Dropout modules (Phi-3's residual dropout), so its
# training-mode loss is deterministic and is compared as such; it misses attention dropout,
# which transformers applies functionally from the config (Llama's attention_dropout), so for
# that model TRL's loss is taken in eval mode: the dropout-free loss our training must give.
DROPOUT_MODELS = {
    "phi3-residual": ({"architecture": "phi3", "resid_pdrop": 0.3}, True),
    "llama-attention": ({"attention_dropout": 0.5}, False),
}


def trl_python() -> str:
    """TRL's own virtualenv when there is one, else this interpreter when TRL is installed in
    it (the [dev] extra pins it), else skip."""
    for python in CANDIDATES:
        if python and Path(python).exists():
            return python
    if importlib.util.find_spec("trl") is not None:
        return sys.executable
    pytest.skip("TRL not installed and no TRL virtualenv found (set PLAMO_FAST_TRL_PYTHON)")


def make_models(root: Path, template: str, **model) -> tuple[Path, Path]:
    """The tiny model (with ``template``; ``model``: tiny_model's architecture and config) as
    reference, and a perturbed copy as policy."""
    from transformers import AutoModelForCausalLM

    reference = tiny_model(root / "reference", **model)
    config = reference / "tokenizer_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "chat_template": template}))
    model = AutoModelForCausalLM.from_pretrained(reference, dtype=torch.float32)
    generator = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * NOISE)
    policy = root / "policy"
    model.save_pretrained(policy)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (policy / name).write_bytes((reference / name).read_bytes())
    return reference, policy


@pytest.fixture(scope="module")
def setups(tmp_path_factory):
    python = trl_python()
    root = tmp_path_factory.mktemp("trl")
    cases, made = [], {}
    for name, template in TEMPLATES.items():
        reference, policy = make_models(root / name, template)
        data = packed(root / name / "packed", reference, RECORDS, "dpo", max_length=PACK_LENGTH)
        made[name] = (reference, policy, data)
        for loss, beta in LOSSES:
            cases.append(
                {
                    "name": f"{name}-{loss}",
                    "policy": str(policy),
                    "reference": str(reference),
                    "records": RECORDS,
                    "loss_type": loss,
                    "beta": beta,
                    "train_mode": False,
                }
            )
    for name, (model, train_mode) in DROPOUT_MODELS.items():
        reference, policy = make_models(root / name, CHATML_NO_FINAL_NEWLINE, **model)
        data = packed(root / name / "packed", reference, RECORDS, "dpo", max_length=PACK_LENGTH)
        made[name] = (reference, policy, data)
        cases.append(
            {
                "name": name,
                "policy": str(policy),
                "reference": str(reference),
                "records": RECORDS,
                "loss_type": "sigmoid",
                "beta": 0.1,
                "train_mode": train_mode,
            }
        )
    job, result = root / "job.json", root / "result.json"
    job.write_text(json.dumps({"cases": cases}, ensure_ascii=False), encoding="utf-8")
    done = subprocess.run(
        [python, str(PEER), str(job), str(result)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return made, json.loads(result.read_text(encoding="utf-8"))


def ours(reference: Path, policy: Path, data: Path, *, count_final_token: bool = False):
    """Per-pair sequence log-probs (policy and reference, chosen and rejected), the number of
    trained tokens and the token ids of each pair's two documents, in record order."""
    from transformers import AutoModelForCausalLM

    from plamo_fast.data.packing import IGNORE_INDEX as IGNORE
    from plamo_fast.train.data import collate, load_packed
    from plamo_fast.train.losses import document_logps, pair_indices

    rows = load_packed([str(data)], need_pairs=True)
    batch = collate(rows)
    labels = batch["labels"].clone()
    if count_final_token:  # also train each document's last token, as TRL does
        for row, start, length, pair in batch["docs"]:
            if pair >= 0:
                end = start + length - 1
                assert labels[row, end] == IGNORE
                labels[row, end] = batch["input_ids"][row, end]
    logps = {}
    for side, folder in (("policy", policy), ("reference", reference)):
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        with torch.no_grad():
            logits = model(
                input_ids=batch["input_ids"],
                position_ids=batch["position_ids"],
                use_cache=False,
            ).logits
        logps[side] = document_logps(logits, labels, batch["docs"])
    chosen, rejected = pair_indices(batch["docs"])
    pairs = [batch["docs"][i][3] for i in chosen]
    assert sorted(pairs) == list(range(len(RECORDS)))  # pair id = record index
    order = sorted(range(len(pairs)), key=pairs.__getitem__)
    chosen = [chosen[k] for k in order]
    rejected = [rejected[k] for k in order]

    def document(i):
        row, start, length, _ = batch["docs"][i]
        ids = batch["input_ids"][row, start : start + length].tolist()
        trained = (labels[row, start : start + length] != IGNORE).nonzero().flatten().tolist()
        return ids, trained

    sums = {side: s.double() for side, (s, _) in logps.items()}
    counts = logps["policy"][1]
    assert torch.equal(counts, logps["reference"][1])
    return {
        "policy_chosen": sums["policy"][chosen],
        "policy_rejected": sums["policy"][rejected],
        "reference_chosen": sums["reference"][chosen],
        "reference_rejected": sums["reference"][rejected],
        "chosen_tokens": counts[chosen],
        "rejected_tokens": counts[rejected],
        "chosen_docs": [document(i) for i in chosen],
        "rejected_docs": [document(i) for i in rejected],
    }


def our_loss(side: dict, loss: str, beta: float) -> float:
    from plamo_fast.train.losses import dpo_losses

    keys = ("policy_chosen", "policy_rejected", "reference_chosen", "reference_rejected")
    values = [side[k].float() for k in keys]
    if loss == "ipo":  # as DPOObjective.step: per-token averages
        tokens = [side["chosen_tokens"], side["rejected_tokens"]] * 2
        values = [v / t.clamp(min=1) for v, t in zip(values, tokens, strict=True)]
    losses, _, _ = dpo_losses(*values, beta=beta, kind=loss)
    return float(losses.mean())


def check_tokens(side: dict, peer: dict, *, final_token_trained_by_peer: bool) -> None:
    """Same token ids in every document; TRL's completion (everything after the prompt) is our
    trained span, plus the document's last token where ``final_token_trained_by_peer``."""
    for kind in ("chosen", "rejected"):
        for i, (ids, trained) in enumerate(side[f"{kind}_docs"]):
            prompt, completion = peer["prompt_ids"][i], peer[f"{kind}_ids"][i]
            assert ids == prompt + completion, f"pair {i} {kind}: token ids differ"
            end = len(ids) - 1 if final_token_trained_by_peer else len(ids)
            assert trained == list(range(len(prompt), end)), f"pair {i} {kind}: trained tokens"
            peer_tokens = peer[f"{kind}_tokens"][i]
            assert peer_tokens == len(completion)
            assert int(side[f"{kind}_tokens"][i]) == end - len(prompt)


def check_logps(side: dict, peer: dict) -> None:
    for key in ("policy_chosen", "policy_rejected", "reference_chosen", "reference_rejected"):
        expected = torch.tensor(peer[key], dtype=torch.float64)
        torch.testing.assert_close(side[key], expected, rtol=1e-5, atol=1e-4, msg=key)


@pytest.mark.parametrize("loss,beta", LOSSES)
def test_dpo_loss_matches_trl(setups, loss, beta):
    made, results = setups
    peer = results[f"aligned-{loss}"]
    side = ours(*made["aligned"])
    check_tokens(side, peer, final_token_trained_by_peer=False)
    check_logps(side, peer)
    value = our_loss(side, loss, beta)
    # The policy differs from the reference, so this is not the trivial log 2 (or 1/(4β²)).
    trivial = math.log(2) if loss == "sigmoid" else 1 / (4 * beta**2)
    assert abs(value - trivial) > 1e-2 * trivial
    assert value == pytest.approx(peer["loss"], rel=1e-5)


@pytest.mark.parametrize("loss,beta", LOSSES)
def test_chatml_differs_from_trl_only_by_the_final_newline(setups, loss, beta):
    made, results = setups
    peer = results[f"chatml-{loss}"]
    side = ours(*made["chatml"])
    check_tokens(side, peer, final_token_trained_by_peer=True)
    assert our_loss(side, loss, beta) != pytest.approx(peer["loss"], rel=1e-5)
    # Counting each document's last token (the "\n" after <|im_end|>) gives TRL's numbers.
    side = ours(*made["chatml"], count_final_token=True)
    check_tokens(side, peer, final_token_trained_by_peer=False)
    check_logps(side, peer)
    assert our_loss(side, loss, beta) == pytest.approx(peer["loss"], rel=1e-5)


@pytest.mark.parametrize("name", DROPOUT_MODELS)
def test_dpo_training_without_dropout_matches_trl(setups, tmp_path, name):
    """The loss our DPO training logs at its first step (before any update; every pair in one
    step) equals TRL's DPOTrainer loss on a model whose config asks for dropout."""
    import yaml

    from plamo_fast.train.api import train
    from plamo_fast.train.config import load_config
    from plamo_fast.train.data import load_packed

    made, results = setups
    reference, policy, data = made[name]
    rows = len(load_packed([str(data)], need_pairs=True))
    stage = {
        "name": "dpo",
        "model": str(policy),
        "reference_model": str(reference),
        "output": str(tmp_path / "out"),
        "data": {"packed": [str(data)], "shuffle": False},
        "optim": {"lr": 1e-6, "schedule": "constant"},
        "micro_batch_rows": 1,
        "grad_accum": rows,
        "max_steps": 1,
        "beta": 0.1,
        "loss": "sigmoid",
    }
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"kind": "dpo", "plot": False, "stages": [stage]}))
    train(load_config(config, kind="dpo"), "dpo", progress=False)
    (logged,) = [
        json.loads(x) for x in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()
    ]
    assert logged["pairs"] == len(RECORDS)
    peer = results[name]["loss"]
    assert abs(peer - math.log(2)) > 1e-2  # the policy differs from the reference
    assert logged["loss"] == pytest.approx(peer, rel=1e-5)
