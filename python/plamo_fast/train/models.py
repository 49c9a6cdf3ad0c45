"""The models of a stage: loading (optionally without dropout), the packed-attention probe, a
frozen reference placed like the policy, saving a Hugging Face folder, and freeing a DeepSpeed
engine's memory."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from plamo_fast.errors import PlamoFastError

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "generation_config.json",
)
# Module attributes holding a dropout rate that transformers applies functionally in training
# mode (``dropout=0.0 if not self.training else self.attention_dropout``), out of the reach of
# a switch that only looks at nn.Dropout modules.
FUNCTIONAL_DROPOUT = (
    "attention_dropout",
    "attn_dropout",
    "attn_drop",
    "dropout",
    "dropout_p",
    "dropout_prob",
)


def load_model(path: str, dtype: str, attn_implementation: str, *, disable_dropout: bool = False):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=getattr(torch, dtype), attn_implementation=attn_implementation
    )
    model.config.use_cache = False
    if disable_dropout:
        without_dropout(model)
    return model


def without_dropout(model) -> None:
    """Turn every dropout of ``model`` off, also in training mode (DPO's ``disable_dropout``,
    as TRL's): each nn.Dropout gets p = 0, and so does each rate transformers reads from a
    module attribute (Llama's attention dropout, which TRL's switch misses). The model's config,
    which is what gets saved, keeps its values."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        for name in FUNCTIONAL_DROPOUT:
            value = getattr(module, name, None)
            if isinstance(value, float | int) and not isinstance(value, bool):
                setattr(module, name, 0.0)


def check_packed_attention(model, device, config) -> None:
    """Fail loudly when the model does not isolate packed documents: the logits of a document
    packed after another must equal its logits alone. ``model`` may be wrapped (DDP, ZeRO-3);
    ``config`` is the inner model's."""
    import torch

    vocab = config.vocab_size
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(0, vocab, (1, 6), generator=gen).to(device)
    b = torch.randint(0, vocab, (1, 5), generator=gen).to(device)
    packed = torch.cat([a, b], dim=1)
    positions = torch.cat([torch.arange(6), torch.arange(5)])[None].to(device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        together = model(input_ids=packed, position_ids=positions, use_cache=False).logits
        alone = model(input_ids=b, use_cache=False).logits
    model.train(was_training)
    err = (together[0, 6:].float() - alone[0].float()).abs().max().item()
    scale = alone.float().abs().max().item() + 1e-6
    if not math.isfinite(err) or not math.isfinite(scale):
        raise PlamoFastError("the model's logits are not finite: its weights hold NaN or inf")
    if err > 1e-2 * scale + 1e-3:
        raise PlamoFastError(
            f"this model does not keep packed documents apart (max logit difference {err:.3g}): "
            "its attention ignores position_ids-based packing. Use attn_implementation sdpa, "
            "eager or flash_attention_2 with a transformers model, or pack with one document "
            "per row (--max-length per sample)."
        )


def prepare_frozen(accelerator, model):
    """A model that is only run forward (the DPO reference), placed like the policy. Under
    DeepSpeed it gets an engine without optimizer: with ZeRO-3 its parameters stay sharded
    across processes (``from_pretrained`` already partitioned them when zero3_init_flag is set,
    and they cannot run forward outside an engine); with ZeRO-1/2 each process holds a copy."""
    model.requires_grad_(False)
    plugin = accelerator.state.deepspeed_plugin
    if plugin is None:
        return model.to(accelerator.device).eval()
    import copy

    import deepspeed

    config = copy.deepcopy(plugin.deepspeed_config)  # "auto" values filled by prepare()
    for key in ("optimizer", "scheduler"):
        config.pop(key, None)
    zero = config.setdefault("zero_optimization", {})
    if zero.get("stage") != 3:
        config["zero_optimization"] = {"stage": 0}
    else:
        for key in ("offload_optimizer",):
            zero.pop(key, None)
    engine, *_ = deepspeed.initialize(model=model, config=config)
    engine.eval()  # DeepSpeedEngine.eval() returns None, unlike Module.eval()
    return engine


def release_frozen(model) -> None:
    """Free a model made by prepare_frozen once it is no longer needed."""
    if hasattr(model, "destroy"):  # a DeepSpeed engine
        model.destroy()
        drop_tensors(model)


def drop_tensors(engine) -> None:
    """Free the memory of a destroyed DeepSpeed engine. Its ZeRO-3 optimizer stays reachable
    after destroy() (through hooks held by autograd, out of the garbage collector's sight), and
    with it the fp32 master weights, Adam moments and parameter shards: about 12 bytes per
    parameter, which the next stage would need."""
    import torch

    optimizer = getattr(engine, "optimizer", None)
    inner = getattr(optimizer, "optimizer", None)
    if inner is not None:  # the torch optimizer over the fp32 partitions
        inner.state.clear()
        for group in inner.param_groups:
            for param in group["params"]:
                param.grad = None
                param.data = torch.empty(0, dtype=param.dtype, device=param.device)

    def holds_tensors(value, depth: int = 0) -> bool:
        if torch.is_tensor(value):
            return True
        if depth == 2 or not value or not isinstance(value, list | tuple | dict):
            return False
        first = next(iter(value.values())) if isinstance(value, dict) else value[0]
        return holds_tensors(first, depth + 1)

    for holder in (optimizer, engine):
        for name, value in list(vars(holder).items()) if holder is not None else []:
            if holds_tensors(value):
                setattr(holder, name, None)
    for param in engine.module.parameters():
        param.data = torch.empty(0, dtype=param.dtype, device=param.device)
        if hasattr(param, "ds_tensor"):
            param.ds_tensor = None


def save_model(accelerator, model, folder: Path, source_model: str) -> None:
    """A Hugging Face model folder: safetensors weights, config, and the tokenizer files of the
    starting model (gathered from every process under ZeRO-3 / FSDP)."""
    state = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        folder.mkdir(parents=True, exist_ok=True)
        accelerator.unwrap_model(model).save_pretrained(
            folder, state_dict=state, safe_serialization=True
        )
        for name in TOKENIZER_FILES:
            src = Path(source_model) / name
            if src.is_file() and not (folder / name).exists():
                shutil.copy2(src, folder / name)
