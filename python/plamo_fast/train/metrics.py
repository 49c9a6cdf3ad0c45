"""What a stage logs: metrics.jsonl (plus TensorBoard / W&B), throughput over all processes,
and a PNG of the curves."""

from __future__ import annotations

import json
import time
from pathlib import Path

from plamo_fast.errors import PlamoFastError
from plamo_fast.train.collective import global_sums
from plamo_fast.train.flops import matmul_parameters, training_flops


class MetricsLog:
    """metrics.jsonl (rank 0), plus TensorBoard / W&B when asked for."""

    def __init__(self, path: Path, resume_step: int, report_to: list[str], enabled: bool):
        self.path = path
        self.enabled = enabled
        self.writers = []
        if not enabled:
            return
        if path.exists():  # keep what the resumed run already logged, nothing after it
            kept = [
                line
                for line in path.read_text(encoding="utf-8").splitlines()
                if line and json.loads(line).get("step", 0) <= resume_step
            ]
            path.write_text("".join(x + "\n" for x in kept), encoding="utf-8")
        if "tensorboard" in report_to:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as exc:
                raise PlamoFastError(
                    "report_to tensorboard needs `pip install tensorboard`"
                ) from exc
            self.writers.append(("tb", SummaryWriter(str(path.parent / "tensorboard"))))
        if "wandb" in report_to:
            try:
                import wandb
            except ImportError as exc:
                raise PlamoFastError("report_to wandb needs `pip install wandb`") from exc
            self.writers.append(("wandb", wandb.init(project="plamo-fast", dir=str(path.parent))))

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        for kind, writer in self.writers:
            scalars = {k: v for k, v in record.items() if isinstance(v, int | float)}
            if kind == "tb":
                for k, v in scalars.items():
                    writer.add_scalar(k, v, record["step"])
            else:
                writer.log(scalars, step=record["step"])

    def close(self) -> None:
        for kind, writer in self.writers:
            writer.close() if kind == "tb" else writer.finish()


class ProgressLines:
    """One line per logged step on stderr, for a log that is not a terminal (a cluster job's):
    ``sft math: step 40/400 loss 1.2345 lr 9.87e-06 tokens/s 12,345 elapsed 0:01:02 eta
    0:09:18``. The ETA assumes the remaining steps take as long as those since the (re)start
    (``start``) did."""

    def __init__(self, label: str, total: int, start: int, enabled: bool, clock=time.monotonic):
        self.label = label
        self.total = total
        self.start = start
        self.enabled = enabled
        self.clock = clock
        self.started = clock()

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        import sys

        step = record["step"]
        elapsed = self.clock() - self.started
        done = step - self.start
        eta = elapsed / done * (self.total - step) if done > 0 else float("nan")
        sys.stderr.write(
            f"{self.label}: step {step}/{self.total} loss {record['loss']:.4f} "
            f"lr {record['lr']:.2e} tokens/s {record['tokens_per_s']:,.0f} "
            f"elapsed {_clock(elapsed)} eta {_clock(eta)}\n"
        )
        sys.stderr.flush()


def _clock(seconds: float) -> str:
    if seconds != seconds:  # NaN: nothing measured yet
        return "?"
    whole = round(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class Throughput:
    """Tokens/s and model TFLOP/s since the (re)start, summed over all processes in one
    all-reduce per step; MFU against ``peak_tflops`` per process when set."""

    def __init__(self, accelerator, model, peak_tflops: float):
        inner = accelerator.unwrap_model(model)
        self.shape = (
            matmul_parameters(inner),
            inner.config.num_hidden_layers,
            inner.config.hidden_size,
        )
        self.peak = peak_tflops * accelerator.num_processes
        self.started = time.perf_counter()
        self.tokens = 0
        self.flops = 0.0

    def step(self, accelerator, batches: list[dict]) -> dict:
        lengths = [doc[2] for b in batches for doc in b["docs"]]
        tokens, flops = global_sums(
            accelerator,
            sum(int(b["input_ids"].numel()) for b in batches),
            training_flops(*self.shape, lengths),
        )
        self.tokens += int(tokens)
        self.flops += flops
        elapsed = time.perf_counter() - self.started
        record = {
            "tokens_per_s": self.tokens / elapsed if elapsed > 0 else 0.0,
            "tflops_per_s": self.flops / elapsed / 1e12 if elapsed > 0 else 0.0,
        }
        if self.peak:
            record["mfu"] = record["tflops_per_s"] / self.peak
        return record


def plot_curves(metrics: Path, out: Path) -> bool:
    """A PNG of every logged curve; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    records = [json.loads(x) for x in metrics.read_text(encoding="utf-8").splitlines() if x]
    keys = [
        k
        for k in records[0]
        if k not in ("step", "epoch") and isinstance(records[0][k], float | int)
    ]
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 2.2 * len(keys)), sharex=True, squeeze=False)
    steps = [r["step"] for r in records]
    for ax, key in zip(axes[:, 0], keys, strict=True):
        ax.plot(steps, [r.get(key) for r in records])
        ax.set_ylabel(key, fontsize=8)
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return True
