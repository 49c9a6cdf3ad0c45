"""Benchmarks (``plamo-fast eval``): Jaster (llm-jp-eval's datasets, prompts and metrics), with
answers cached by a content hash of what produced them (:mod:`plamo_fast.eval.cache`) and
results written as ``results.json`` / ``results.md`` (:mod:`plamo_fast.eval.results`)."""
