"""What the processes of a launch agree on: step-wide sums, that every process's losses are
finite before the step's last backward pass, and work done once by the main process."""

from __future__ import annotations

from collections.abc import Callable

import torch

from plamo_fast.errors import PlamoFastError


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


class FiniteBackward:
    """``accelerator.backward`` for the micro-batches of one optimizer step, refusing a step
    in which some micro-batch loss on some process is NaN or infinite. The decision is taken
    before the step's last backward pass, because under DeepSpeed that backward also runs the
    optimizer step; all processes decide together (one all-reduce per step), so none is left
    waiting in a collective."""

    def __init__(self, accelerator, micro_batches: int):
        self.accelerator = accelerator
        self.left = micro_batches
        self.bad: float | None = None

    def __call__(self, loss: torch.Tensor) -> None:
        self.left -= 1
        if self.bad is None and not bool(torch.isfinite(loss.detach()).all()):
            self.bad = float(loss.detach())
        if self.left == 0:
            (flag,) = global_sums(self.accelerator, 0.0 if self.bad is None else 1.0)
            if flag:
                # Another process's loss is the bad one when this one's are all finite.
                raise NonFiniteLoss(self.bad if self.bad is not None else float("nan"))
        self.accelerator.backward(loss)


def on_main(state, work: Callable[[], None]) -> None:
    """Run ``work`` on the main process only; every process returns once it is done, and every
    process raises when it failed (so that none waits for a main process that has stopped).
    ``state``: accelerate's PartialState or Accelerator."""
    failure = None
    if state.is_main_process:
        try:
            work()
        except Exception as exc:
            failure = exc
    if state.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        message = [None if failure is None else str(failure) or type(failure).__name__]
        broadcast_object_list(message)  # also the barrier: the others wait for the main process
        if failure is None and message[0] is not None:
            raise PlamoFastError(f"the main process stopped: {message[0]}")
    if failure is not None:
        raise failure
