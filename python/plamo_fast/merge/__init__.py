"""Model merging: SLERP and linear averaging of safetensors checkpoints, streamed by the native
core with bounded memory."""

from plamo_fast.merge.api import MergeResult, merge, parse_size
from plamo_fast.merge.config import ConfigError, MergeConfig, load_config

__all__ = ["ConfigError", "MergeConfig", "MergeResult", "load_config", "merge", "parse_size"]
