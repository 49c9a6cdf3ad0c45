"""Runs the plamo-fast CLI under `accelerate launch` with a DeepSpeed config on CPU processes.

accelerate only starts DeepSpeed on an accelerator device; naming the gloo backend before the
Accelerator is built lets it start on CPU (DeepSpeed's CPU accelerator, DS_ACCELERATOR=cpu).
The training code that runs is the code a GPU run uses."""

import sys

from accelerate import PartialState

PartialState(backend="gloo")

from plamo_fast.cli import main  # noqa: E402

sys.exit(main())
