"""Peer side of tests/test_train_trl_parity.py, run with the TRL virtualenv's python (which has
no plamo_fast): the DPO loss TRL's DPOTrainer computes for one batch holding every pair.

Usage: python trl_dpo_peer.py JOB.json RESULT.json. The job is ``{"cases": [...]}``, each case
``{"name", "policy", "reference", "records", "loss_type", "beta", "train_mode"}`` (model
folders, TRL conversational preference records; ``train_mode``: the policy in training mode, as
DPOTrainer trains it, with its default ``disable_dropout``, else in eval mode). The result holds,
by case name: TRL's tokenization (prompt/chosen/rejected ids), its batch loss
(``DPOTrainer.compute_loss``), and the per-pair sequence log-probs of policy and reference (the
fused-LM-head forward ``compute_loss`` runs, in eval mode).
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import warnings

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOConfig, DPOTrainer


def sequence_logps(model, batch):
    """Summed completion log-probs per sequence, as in ``DPOTrainer._compute_loss``."""
    labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
    out = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        labels=labels,
        use_cache=False,
        fused_lm_head=True,
    )
    return out.log_probs[:, -(batch["input_ids"].size(1) - 1) :].sum(dim=1)


def run_case(case: dict, out_dir: str) -> dict:
    policy = AutoModelForCausalLM.from_pretrained(case["policy"], dtype=torch.float32)
    reference = AutoModelForCausalLM.from_pretrained(case["reference"], dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(case["policy"])
    records = case["records"]
    args = DPOConfig(
        output_dir=out_dir,
        beta=case["beta"],
        disable_dropout=True,  # TRL's default, named: the dropout cases rely on it
        loss_type=[case["loss_type"]],
        max_length=None,  # no truncation: our packer keeps every token too
        padding_free=False,
        precompute_ref_log_probs=False,
        bf16=False,  # DPOConfig turns bf16 on by default; compare in float32
        fp16=False,
        use_cpu=True,
        gradient_checkpointing=False,
        per_device_train_batch_size=len(records),
        report_to=[],
        dataset_num_proc=None,
        seed=0,
    )
    trainer = DPOTrainer(
        model=policy,
        ref_model=reference,
        args=args,
        train_dataset=Dataset.from_list(records),
        processing_class=tokenizer,
    )
    examples = [trainer.train_dataset[i] for i in range(len(records))]  # in record order
    batch = trainer.data_collator(examples)
    trainer.model.train(case.get("train_mode", False))
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, batch)
        trainer.model.eval()
        pol = sequence_logps(trainer.model, batch).double()
        ref = sequence_logps(trainer.ref_model, batch).double()
    n = len(records)
    completion_tokens = batch["completion_mask"].sum(dim=1)
    return {
        "prompt_ids": [e["prompt_ids"] for e in examples],
        "chosen_ids": [e["chosen_ids"] for e in examples],
        "rejected_ids": [e["rejected_ids"] for e in examples],
        "loss": float(loss),
        "policy_chosen": pol[:n].tolist(),
        "policy_rejected": pol[n:].tolist(),
        "reference_chosen": ref[:n].tolist(),
        "reference_rejected": ref[n:].tolist(),
        "chosen_tokens": completion_tokens[:n].tolist(),
        "rejected_tokens": completion_tokens[n:].tolist(),
    }


def main() -> None:
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    with open(sys.argv[1], encoding="utf-8") as f:
        job = json.load(f)
    torch.use_deterministic_algorithms(True)
    results = {}
    with tempfile.TemporaryDirectory() as out_dir:
        for case in job["cases"]:
            results[case["name"]] = run_case(case, out_dir)
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
