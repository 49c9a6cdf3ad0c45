"""Random Llama-shaped checkpoints (config.json + sharded safetensors) for the demo, the tests
and the benchmarks; no model hub needed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plamo_fast.reference.safetensors_io import write_safetensors
from plamo_fast.reference.slerp import encode


@dataclass(frozen=True)
class LlamaShape:
    layers: int
    hidden: int
    intermediate: int
    vocab: int
    heads: int
    kv_heads: int
    tie_word_embeddings: bool = False

    def tensors(self) -> list[tuple[str, tuple[int, ...]]]:
        head_dim = self.hidden // self.heads
        kv = self.kv_heads * head_dim
        out = [("model.embed_tokens.weight", (self.vocab, self.hidden))]
        for i in range(self.layers):
            p = f"model.layers.{i}."
            out += [
                (p + "input_layernorm.weight", (self.hidden,)),
                (p + "self_attn.q_proj.weight", (self.hidden, self.hidden)),
                (p + "self_attn.k_proj.weight", (kv, self.hidden)),
                (p + "self_attn.v_proj.weight", (kv, self.hidden)),
                (p + "self_attn.o_proj.weight", (self.hidden, self.hidden)),
                (p + "post_attention_layernorm.weight", (self.hidden,)),
                (p + "mlp.gate_proj.weight", (self.intermediate, self.hidden)),
                (p + "mlp.up_proj.weight", (self.intermediate, self.hidden)),
                (p + "mlp.down_proj.weight", (self.hidden, self.intermediate)),
            ]
        out.append(("model.norm.weight", (self.hidden,)))
        if not self.tie_word_embeddings:
            out.append(("lm_head.weight", (self.vocab, self.hidden)))
        return out

    def num_bytes(self, dtype: str = "BF16") -> int:
        size = {"BF16": 2, "F16": 2, "F32": 4}[dtype]
        return sum(int(np.prod(s)) for _, s in self.tensors()) * size

    def config(self, dtype: str) -> dict:
        return {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": self.hidden,
            "intermediate_size": self.intermediate,
            "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads,
            "num_key_value_heads": self.kv_heads,
            "vocab_size": self.vocab,
            "max_position_embeddings": 256,
            "rms_norm_eps": 1e-5,
            "tie_word_embeddings": self.tie_word_embeddings,
            "torch_dtype": {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}[dtype],
            "bos_token_id": 1,
            "eos_token_id": 2,
        }


SHAPES = {
    "tiny": LlamaShape(layers=4, hidden=64, intermediate=176, vocab=512, heads=4, kv_heads=2),
    "small": LlamaShape(layers=8, hidden=512, intermediate=1408, vocab=8000, heads=8, kv_heads=4),
    # About 2.0 GB in bf16: the benchmark size the issue asks for.
    "2gb": LlamaShape(
        layers=17, hidden=2048, intermediate=5632, vocab=32000, heads=16, kv_heads=16
    ),
}


def write_random_model(
    folder: str | Path,
    shape: LlamaShape,
    *,
    seed: int,
    dtype: str = "BF16",
    max_shard_bytes: int = 1 << 30,
    scale: float = 0.02,
) -> Path:
    """Writes a random model; norms are near 1, other weights ~ N(0, scale²)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shards: list[dict] = [{}]
    shard_bytes = 0
    for name, dims in shape.tensors():
        values = rng.standard_normal(dims, dtype=np.float32) * np.float32(scale)
        if name.endswith("norm.weight"):
            values += np.float32(1.0)
        stored = encode(dtype, values)
        if shards[-1] and shard_bytes + stored.nbytes > max_shard_bytes:
            shards.append({})
            shard_bytes = 0
        shards[-1][name] = (dtype, stored)
        shard_bytes += stored.nbytes
    weight_map = {}
    total = 0
    for i, tensors in enumerate(shards):
        file_name = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        write_safetensors(folder / file_name, tensors)
        for name, (_, array) in tensors.items():
            weight_map[name] = file_name
            total += array.nbytes
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(
        json.dumps(index, indent=2), encoding="utf-8"
    )
    (folder / "config.json").write_text(json.dumps(shape.config(dtype), indent=2), encoding="utf-8")
    (folder / "generation_config.json").write_text(
        json.dumps({"bos_token_id": 1, "eos_token_id": 2}, indent=2), encoding="utf-8"
    )
    return folder
