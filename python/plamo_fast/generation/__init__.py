"""Generation: one :class:`~plamo_fast.generation.backends.Backend` interface over vLLM,
transformers and OpenAI-compatible servers, used by ``sample``, ``score`` (judging) and
``eval``."""
