"""SFT: cross-entropy on response tokens only, normalised by the number of trained tokens in the
whole optimizer step (all micro-batches, all processes), so a micro-batch with few trained
tokens weighs no more than its tokens."""

from __future__ import annotations

from plamo_fast.train.collective import FiniteBackward, global_sums
from plamo_fast.train.losses import sft_loss_sum


class SFTObjective:
    disable_dropout = False  # the model trains with the dropout its config asks for

    def prepare(self, accelerator, model, rows, run_dir) -> None:
        pass

    def release(self) -> None:
        pass

    def step(self, accelerator, model, batches: list[dict], micro: list[list[int]]) -> dict:
        local = sum(int((b["labels"][:, 1:] != -100).sum()) for b in batches)
        (trained,) = map(int, global_sums(accelerator, local))
        # accelerate divides by grad_accum and DDP averages over processes: undo both so the
        # step's gradient is the sum over its trained tokens divided by their number.
        scale = (
            accelerator.num_processes * accelerator.gradient_accumulation_steps / max(trained, 1)
        )
        total = 0.0
        backward = FiniteBackward(accelerator, len(batches))
        for batch in batches:
            with accelerator.accumulate(model):
                logits = model(
                    input_ids=batch["input_ids"].to(accelerator.device),
                    position_ids=batch["position_ids"].to(accelerator.device),
                    use_cache=False,
                ).logits
                loss_sum, _ = sft_loss_sum(logits, batch["labels"].to(accelerator.device))
                backward(loss_sum * scale)
                total += float(loss_sum.detach())
        (loss_sum,) = global_sums(accelerator, total)
        loss = loss_sum / max(trained, 1)
        return {"loss": loss, "trained_tokens": trained}
