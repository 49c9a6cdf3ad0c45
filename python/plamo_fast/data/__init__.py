"""Data preparation: chat templates with exact assistant spans, response-only labels, global
best-fit-decreasing packing (``plamo-fast pack``); dedup and leak filtering to come."""
