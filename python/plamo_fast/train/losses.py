"""Losses on packed rows: response-only cross-entropy, per-document sequence log-probs, DPO
(sigmoid, IPO). Sums are returned with their counts so that the caller normalises over the
whole gradient-accumulation step (and across processes), not per micro-batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from plamo_fast.data.packing import IGNORE_INDEX


def token_logps(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-prob of each next token and whether it is trained, both (B, L-1): position t
    predicts labels[t + 1]."""
    target = labels[:, 1:]
    logits = logits[:, :-1]
    nll = F.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(),
        target.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    ).view(target.shape)
    return -nll, target != IGNORE_INDEX


def sft_loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Summed cross-entropy over trained tokens, and their number."""
    logp, mask = token_logps(logits, labels)
    return -(logp * mask).sum(), int(mask.sum())


def document_logps(
    logits: torch.Tensor, labels: torch.Tensor, docs: list[tuple[int, int, int, int]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-prob of the trained tokens of each document, and their count."""
    logp, mask = token_logps(logits, labels)
    logp = logp * mask
    sums, counts = [], []
    for row, start, length, _pair in docs:
        # Tokens start+1 .. start+length-1 are predicted at shifted positions start .. +length-2.
        sums.append(logp[row, start : start + length - 1].sum())
        counts.append(mask[row, start : start + length - 1].sum())
    return torch.stack(sums), torch.stack(counts)


def pair_indices(docs: list[tuple[int, int, int, int]]) -> tuple[list[int], list[int]]:
    """Indices (into ``docs``) of the chosen and rejected document of each pair: packed pairs
    are adjacent, chosen first."""
    chosen, rejected = [], []
    seen: dict[int, int] = {}
    for i, (_row, _start, _length, pair) in enumerate(docs):
        if pair < 0:
            continue
        if pair in seen:
            chosen.append(seen.pop(pair))
            rejected.append(i)
        else:
            seen[pair] = i
    if seen:
        raise ValueError(f"pair {next(iter(seen))} has only one document in its micro-batch")
    return chosen, rejected


def dpo_losses(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor,
    *,
    beta: float,
    kind: str = "sigmoid",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-pair losses and the implicit rewards of chosen and rejected. ``sigmoid``:
    -log σ(β·h); ``ipo``: (h - 1/(2β))², with h the difference of the log-ratios (IPO is fed
    per-token average log-probs, as in its paper and TRL)."""
    chosen_ratio = policy_chosen - reference_chosen
    rejected_ratio = policy_rejected - reference_rejected
    h = chosen_ratio - rejected_ratio
    if kind == "sigmoid":
        losses = -F.logsigmoid(beta * h)
    elif kind == "ipo":
        losses = (h - 1 / (2 * beta)) ** 2
    else:
        raise ValueError(f"unknown DPO loss {kind!r}")
    return losses, beta * chosen_ratio.detach(), beta * rejected_ratio.detach()
