"""DPO on packed pair rows (prompt+chosen then prompt+rejected, adjacent in one row).

Reference log-probs are computed once before training (``reference: precomputed``, the default)
and stored in ``OUT.run/reference_logps.npz``, so no reference model stays in memory; or by a
live frozen reference (``reference: live``). The reference is the stage's starting model unless
``reference_model`` names another. Policy and reference run without dropout unless
``disable_dropout: false`` (TRL's default; it also makes the first step's policy equal the
reference, and the precomputed reference equal the live one). The loss of a step is the mean
over all its pairs (all micro-batches, all processes), plus ``sft_weight`` × the NLL of the
chosen responses per trained token."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from plamo_fast.train.collective import FiniteBackward, global_sums
from plamo_fast.train.data import collate
from plamo_fast.train.losses import document_logps, dpo_losses, pair_indices, sft_loss_sum


def _forward(model, batch, device):
    return model(
        input_ids=batch["input_ids"].to(device),
        position_ids=batch["position_ids"].to(device),
        use_cache=False,
    ).logits


class DPOObjective:
    def __init__(self, stage, run):
        self.stage = stage
        self.run = run
        self.disable_dropout = stage.disable_dropout  # in the policy, which the loop loads
        self.reference: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.live = None

    # -- reference ---------------------------------------------------------------------------
    def prepare(self, accelerator, model, rows, run_dir: Path) -> None:
        from plamo_fast.train.checkpoints import latest_checkpoint
        from plamo_fast.train.models import load_model, prepare_frozen, release_frozen

        stage = self.stage
        # Loaded like the policy; its forwards run under the policy's autocast.
        dtype = str(accelerator.unwrap_model(model).dtype).removeprefix("torch.")
        attn = self.run.attn_implementation
        resumed = latest_checkpoint(run_dir) is not None
        path = stage.reference_model or stage.model

        def reference():
            loaded = load_model(path, dtype, attn, disable_dropout=self.disable_dropout)
            return prepare_frozen(accelerator, loaded)

        if stage.reference == "live":
            self.live = reference()
            return
        cache = run_dir / "reference_logps.npz"
        if cache.exists():
            self._load(cache, len(rows))
            return
        # Before the first step the policy is the reference.
        ref = reference() if stage.reference_model or resumed else model
        sums, counts = self._compute(accelerator, ref, rows)
        if ref is not model:
            release_frozen(ref)
            del ref
        if accelerator.is_main_process:  # complete or absent: a resumed run reads it
            offsets = np.cumsum([0] + [len(s) for s in sums])
            partial = cache.with_name(cache.name + ".partial")
            with open(partial, "wb") as f:
                np.savez(
                    f, sums=np.concatenate(sums), counts=np.concatenate(counts), offsets=offsets
                )
            os.replace(partial, cache)
        self.reference = {i: (sums[i], counts[i]) for i in range(len(rows))}
        accelerator.wait_for_everyone()

    def release(self) -> None:
        """Drop the reference (a live DeepSpeed engine is destroyed, freeing its shards)."""
        if self.live is not None:
            from plamo_fast.train.models import release_frozen

            release_frozen(self.live)
        self.live = None
        self.reference = {}

    def _compute(self, accelerator, ref, rows):
        """Each process scores every num_processes-th row (the same number of forward passes
        everywhere, as ZeRO-3 needs), then all results are gathered."""
        from accelerate.utils import gather_object

        world, rank = accelerator.num_processes, accelerator.process_index
        mine = list(range(rank, len(rows), world))
        rounds = -(-len(rows) // world)
        results = []
        with torch.no_grad(), accelerator.autocast():
            for k in range(rounds):
                index = mine[min(k, len(mine) - 1)] if mine else 0
                batch = collate([rows[index]])
                s, c = document_logps(
                    _forward(ref, batch, accelerator.device),
                    batch["labels"].to(accelerator.device),
                    batch["docs"],
                )
                if k < len(mine):
                    results.append((index, s.float().cpu().numpy(), c.cpu().numpy()))
        gathered = gather_object(results) if world > 1 else results
        by_row = {i: (s, c) for i, s, c in gathered}
        return [by_row[i][0] for i in range(len(rows))], [by_row[i][1] for i in range(len(rows))]

    def _load(self, cache: Path, n_rows: int) -> None:
        data = np.load(cache)
        offsets = data["offsets"]
        if len(offsets) != n_rows + 1:
            raise ValueError(f"{cache} was computed for other data; delete it to recompute")
        self.reference = {
            i: (
                data["sums"][offsets[i] : offsets[i + 1]],
                data["counts"][offsets[i] : offsets[i + 1]],
            )
            for i in range(n_rows)
        }

    def _reference_logps(self, accelerator, batch, rows_of_batch):
        device = accelerator.device
        if self.live is not None:
            with torch.no_grad(), accelerator.autocast():
                return document_logps(
                    _forward(self.live, batch, device), batch["labels"].to(device), batch["docs"]
                )
        sums = np.concatenate([self.reference[i][0] for i in rows_of_batch])
        counts = np.concatenate([self.reference[i][1] for i in rows_of_batch])
        return torch.from_numpy(sums).to(device), torch.from_numpy(counts).to(device)

    # -- one optimizer step ------------------------------------------------------------------
    def step(self, accelerator, model, batches: list[dict], micro: list[list[int]]) -> dict:
        stage, device = self.stage, accelerator.device
        pairs_local = sum(len(pair_indices(b["docs"])[0]) for b in batches)
        chosen_local = sum(self._chosen_tokens(b) for b in batches)
        pairs, chosen_tokens = map(int, global_sums(accelerator, pairs_local, chosen_local))
        scale = accelerator.num_processes * accelerator.gradient_accumulation_steps
        totals = {"loss": 0.0, "chosen": 0.0, "rejected": 0.0, "correct": 0.0, "margin": 0.0}
        nll_total = 0.0
        backward = FiniteBackward(accelerator, len(batches))
        for batch, rows_of_batch in zip(batches, micro, strict=True):
            with accelerator.accumulate(model):
                logits = _forward(model, batch, device)
                labels = batch["labels"].to(device)
                sums, counts = document_logps(logits, labels, batch["docs"])
                ref_sums, ref_counts = self._reference_logps(accelerator, batch, rows_of_batch)
                c, r = pair_indices(batch["docs"])
                if stage.loss == "ipo":
                    pol, ref = sums / counts.clamp(min=1), ref_sums / ref_counts.clamp(min=1)
                else:
                    pol, ref = sums, ref_sums
                ref = ref.to(pol.dtype)
                losses, rc, rr = dpo_losses(
                    pol[c], pol[r], ref[c], ref[r], beta=stage.beta, kind=stage.loss
                )
                loss = losses.sum() * scale / max(pairs, 1)
                if stage.sft_weight > 0:
                    nll = self._chosen_nll(logits, labels, batch["docs"], c)
                    loss = loss + stage.sft_weight * nll * scale / max(chosen_tokens, 1)
                    nll_total += float(nll.detach())
                backward(loss)
                totals["loss"] += float(losses.detach().sum())
                totals["chosen"] += float(rc.sum())
                totals["rejected"] += float(rr.sum())
                totals["correct"] += float((rc > rr).float().sum())
                totals["margin"] += float((rc - rr).sum())
        n = max(pairs, 1)
        totals["nll"] = nll_total
        g = dict(zip(totals, global_sums(accelerator, *totals.values()), strict=True))
        metrics = {
            "loss": g["loss"] / n,
            "rewards/chosen": g["chosen"] / n,
            "rewards/rejected": g["rejected"] / n,
            "rewards/accuracy": g["correct"] / n,
            "rewards/margin": g["margin"] / n,
            "pairs": pairs,
        }
        if stage.sft_weight > 0:
            metrics["sft_nll"] = g["nll"] / max(chosen_tokens, 1)
            metrics["loss"] += stage.sft_weight * metrics["sft_nll"]
        return metrics

    @staticmethod
    def _chosen_tokens(batch) -> int:
        c, _ = pair_indices(batch["docs"])
        labels = batch["labels"]
        total = 0
        for i in c:
            row, start, length, _ = batch["docs"][i]
            total += int((labels[row, start + 1 : start + length] != -100).sum())
        return total

    @staticmethod
    def _chosen_nll(logits, labels, docs, chosen):
        keep = torch.full_like(labels, -100)
        for i in chosen:
            row, start, length, _ = docs[i]
            keep[row, start : start + length] = labels[row, start : start + length]
        return sft_loss_sum(logits, keep)[0]
