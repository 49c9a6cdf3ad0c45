"""Template math data (``plamo-fast synth math``): a registry of generators, each a pure function
of a seeded RNG and features, producing problems with worked solutions and exact answers."""

from plamo_fast.synth.registry import REGISTRY, Generator, Problem, Spec, load_all
from plamo_fast.synth.run import generate, synth_math

__all__ = ["REGISTRY", "Generator", "Problem", "Spec", "generate", "load_all", "synth_math"]
