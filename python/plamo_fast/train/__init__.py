"""Training: multi-stage SFT and DPO on packed data, on accelerate (one CPU to many GPUs).

Needs the ``[train]`` extra (torch, transformers, accelerate)."""
