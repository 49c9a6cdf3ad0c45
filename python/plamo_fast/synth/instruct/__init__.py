"""``plamo-fast synth instruct``: Self-Instruct in PLaMo's variant. A model writes short task
titles from sampled seed tasks, then one question per title, then the answer; filters (novelty
by ROUGE-L, length, a keyword blacklist, language, benchmark leaks, truncation) reject
candidates, each counted in a report and written to a rejected file with its reason.

Modules: :mod:`.prompts` (templates, ``--prompts``), :mod:`.seeds` (seed tasks, the shipped
Japanese ones), :mod:`.steps` (prompt text, title parsing), :mod:`.filters`, :mod:`.run` (the
rounds), :mod:`.store` (resumable files), :mod:`.report` (counts)."""

from plamo_fast.synth.instruct.run import EngineOptions, Plan, synth_instruct

__all__ = ["EngineOptions", "Plan", "synth_instruct"]
