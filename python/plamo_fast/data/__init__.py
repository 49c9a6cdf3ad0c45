"""Data preparation: packing now; chat templating, masks, dedup and leak filtering to come."""
