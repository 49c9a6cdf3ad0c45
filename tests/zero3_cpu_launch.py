"""Runs the plamo-fast CLI under `accelerate launch` with a DeepSpeed config on CPU processes.

accelerate only starts DeepSpeed on an accelerator device; naming the gloo backend before the
Accelerator is built lets it start on CPU (DeepSpeed's CPU accelerator, DS_ACCELERATOR=cpu).
The training code that runs is the code a GPU run uses. With PLAMO_FAST_TEST_LIVE_TENSORS=P
each process writes to P.RANK the bytes of tensor storage still alive when the CLI returns."""

import gc
import os
import sys
from pathlib import Path

import torch
from accelerate import PartialState

state = PartialState(backend="gloo")

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
