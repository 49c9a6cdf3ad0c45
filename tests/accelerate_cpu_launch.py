"""Runs the plamo-fast CLI under `accelerate launch` with a DeepSpeed or FSDP config on CPU
processes.

accelerate only starts DeepSpeed and FSDP on accelerator devices. Naming the gloo backend
before the Accelerator is built lets DeepSpeed start on CPU (its CPU accelerator,
DS_ACCELERATOR=cpu); for FSDP the gloo processes are also given accelerate's multi-GPU type,
the one it turns into FSDP (PyTorch's FSDP2 runs on CPU tensors). The training code that runs
is the code a GPU run uses. With PLAMO_FAST_TEST_LIVE_TENSORS=P
each process writes to P.RANK the bytes of tensor storage still alive when the CLI returns."""

import gc
import os
import sys
from pathlib import Path

import torch
from accelerate import PartialState

state = PartialState(backend="gloo")
if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
    from accelerate.utils import DistributedType

    state.distributed_type = DistributedType.MULTI_GPU

from plamo_fast.cli import main  # noqa: E402

code = main()
report = os.environ.get("PLAMO_FAST_TEST_LIVE_TENSORS")
if report:
    gc.collect()
    storages = {}
    for obj in gc.get_objects():
        if torch.is_tensor(obj):
            storage = obj.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
    Path(f"{report}.{state.process_index}").write_text(str(sum(storages.values())))
sys.exit(code)
