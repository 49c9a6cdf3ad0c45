"""What the objectives need from the other processes: step-wide sums, and the agreement that
every process's loss is finite before any of them runs a backward pass."""

from __future__ import annotations

import torch


class NonFiniteLoss(Exception):
    """A micro-batch loss on some process is NaN or infinite; nothing of it was applied."""

    def __init__(self, value: float):
        super().__init__(value)
        self.value = value


def global_sums(accelerator, *values: float) -> list[float]:
    """The sums of ``values`` over all processes, in one all-reduce (float64: counts stay exact)."""
    if accelerator.num_processes == 1:
        return [float(v) for v in values]
    total = torch.tensor(values, device=accelerator.device, dtype=torch.float64)
    return accelerator.reduce(total, reduction="sum").tolist()


def backward_if_finite(accelerator, loss: torch.Tensor) -> None:
    """``accelerator.backward(loss)`` unless the loss of this micro-batch is not finite on some
    process. Checked before the backward pass because under DeepSpeed the last micro-batch's
    backward also runs the optimizer step; all processes stop together (none is left waiting in
    a collective)."""
    local = float(loss.detach())
    bad = 0.0 if torch.isfinite(loss.detach()).all() else 1.0
    if accelerator.num_processes > 1:
        (bad,) = global_sums(accelerator, bad)
    if bad:
        # Another process's loss is the bad one when this one's is finite.
        raise NonFiniteLoss(local if not torch.isfinite(torch.tensor(local)) else float("nan"))
    accelerator.backward(loss)
