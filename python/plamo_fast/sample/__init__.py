"""On-policy preference data: sample N answers per prompt (vLLM, transformers or an
OpenAI-compatible server), score them (LLM judge, reward model, math verifier), and build
best-vs-worst or SPIN pairs for DPO."""
