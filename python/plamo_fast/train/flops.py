"""Model FLOPs of training steps, for achieved TFLOP/s and MFU (model FLOPs utilisation).

Convention of PaLM (Chowdhery et al. 2022, appendix B): forward + backward cost 6 FLOPs per
matmul parameter per token, plus 12 · layers · hidden · context per token for attention. A
packed document's context is its own length (documents never attend to each other), so a
document of length l costs 6·N·l + 12·L·h·l². Recomputation by gradient checkpointing is not
counted (it is hardware FLOPs, not model FLOPs)."""

from __future__ import annotations

from collections.abc import Iterable


def matmul_parameters(model) -> int:
    """Parameters that take part in a matmul for every token: all of them except the input
    embedding (a lookup), unless it is tied to the output head. Counts ZeRO-3 partitioned
    parameters at their full size."""
    seen: set[int] = set()
    total = 0
    for param in model.parameters():
        if id(param) in seen:
            continue
        seen.add(id(param))
        total += int(getattr(param, "ds_numel", param.numel()))
    embedding = model.get_input_embeddings().weight
    output = model.get_output_embeddings()
    tied = output is not None and output.weight is embedding
    if not tied:
        total -= int(getattr(embedding, "ds_numel", embedding.numel()))
    return total


def training_flops(
    parameters: int, layers: int, hidden: int, document_lengths: Iterable[int]
) -> float:
    """Forward + backward model FLOPs of the given documents."""
    total = 0.0
    for length in document_lengths:
        total += 6.0 * parameters * length + 12.0 * layers * hidden * length * length
    return total
