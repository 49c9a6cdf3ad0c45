"""Runs the plamo-fast CLI on CPU processes: under `accelerate launch` with a DeepSpeed or FSDP
config, or under torchrun (plain multi-CPU DDP, with ACCELERATE_USE_CPU=1), where the CLI runs
as it is.

accelerate only starts DeepSpeed and FSDP on accelerator devices. Naming the gloo backend
before the Accelerator is built lets DeepSpeed start on CPU (its CPU accelerator,
DS_ACCELERATOR=cpu); for FSDP the gloo processes are also given accelerate's multi-GPU type,
the one it turns into FSDP (PyTorch's FSDP2 runs on CPU tensors). The training code that runs
is the code a GPU run uses.

With PLAMO_FAST_TEST_LIVE_TENSORS=P each process writes to P.RANK the bytes of tensor storage
still alive when the CLI returns. With PLAMO_FAST_TEST_PACK_LOG=P each call of
``plamo_fast.data.pack.pack`` appends the rank of the process that made it to P."""

import gc
import os
import sys
from pathlib import Path

import torch
from accelerate import PartialState


def flag(name: str) -> bool:
    return os.environ.get(name, "false").lower() == "true"


if flag("ACCELERATE_USE_DEEPSPEED") or flag("ACCELERATE_USE_FSDP"):
    state = PartialState(backend="gloo")
    if flag("ACCELERATE_USE_FSDP"):
        from accelerate.utils import DistributedType

        state.distributed_type = DistributedType.MULTI_GPU

from plamo_fast.cli import main  # noqa: E402

RANK = os.environ.get("RANK", "0")
pack_log = os.environ.get("PLAMO_FAST_TEST_PACK_LOG")
if pack_log:
    import plamo_fast.data.pack as pack_module

    real_pack = pack_module.pack

    def logged_pack(*args, **kwargs):
        with open(pack_log, "a") as f:
            f.write(f"{RANK}\n")
        return real_pack(*args, **kwargs)

    pack_module.pack = logged_pack

code = main()
report = os.environ.get("PLAMO_FAST_TEST_LIVE_TENSORS")
if report:
    gc.collect()
    storages = {}
    for obj in gc.get_objects():
        if torch.is_tensor(obj):
            storage = obj.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
    Path(f"{report}.{RANK}").write_text(str(sum(storages.values())))
sys.exit(code)
