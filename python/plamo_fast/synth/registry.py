"""The generator registry: every template math generator, by name.

A generator is a pure function ``make(rng, spec) -> Problem`` of a seeded
:class:`random.Random` and a :class:`Spec` (difficulty, language, wanted feature values). The
same RNG state and spec give the same problem; the language never changes which random numbers
are drawn, so one seed gives the same problems (and ids) in Japanese and in English.

``Problem.params`` are the numbers (and choices such as the asked-for variable) that fix the
mathematics; the wording variant is not among them. The record id hashes the generator's name,
its version and these params, so two records with one id are the same problem, whatever the
wording (see :mod:`plamo_fast.synth.record`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from random import Random
from typing import NamedTuple

DIFFICULTIES = ("easy", "medium", "hard")
LANGS = ("ja", "en")


class Problem(NamedTuple):
    # The numbers and choices that fix the problem (not the wording), JSON-shaped: str keys;
    # ints, strings, and lists or dicts of them (no bools, None, floats or tuples), so that
    # their repr, which the id hashes, follows from their JSON (record.params_texts).
    params: dict
    features: dict  # what kind of problem it is (carries, reduces, ...); one type per feature
    question: str
    steps: str  # the worked solution, without the final answer line
    answer: str  # the exact answer (see plamo_fast.synth.numbers.answer_text)


@dataclass(frozen=True)
class Spec:
    difficulty: str
    lang: str
    want: dict = field(default_factory=dict)  # feature -> wanted value (--feature)

    @property
    def ja(self) -> bool:
        return self.lang == "ja"


@dataclass(frozen=True)
class Generator:
    name: str  # family.template, e.g. "arithmetic.add"
    version: int  # bump when the same params would give another problem or answer
    make: Callable[[Random, Spec], Problem]
    features: dict[str, tuple[str, ...]]  # controllable features and their values
    summary: str

    @property
    def family(self) -> str:
        return self.name.split(".", 1)[0]


REGISTRY: dict[str, Generator] = {}


def generator(
    name: str, summary: str, *, version: int = 1, features: dict | None = None
) -> Callable[[Callable[[Random, Spec], Problem]], Callable[[Random, Spec], Problem]]:
    """Registers ``make`` under ``name``."""

    def register(make: Callable[[Random, Spec], Problem]) -> Callable[[Random, Spec], Problem]:
        if name in REGISTRY:
            raise ValueError(f"generator {name} registered twice")
        REGISTRY[name] = Generator(name, version, make, dict(features or {}), summary)
        return make

    return register


def pick(rng: Random, spec: Spec, key: str, options: tuple[str, ...]) -> str:
    """The wanted value of feature ``key`` (``--feature key=value``), else a random one. A
    random value is drawn either way, so a wanted feature does not shift the other draws."""
    drawn = options[int(rng.random() * len(options))]
    return spec.want.get(key, drawn)


def load_all() -> dict[str, Generator]:
    """The registry with every generator module imported."""
    from plamo_fast.synth import (  # noqa: F401  (importing registers)
        ages,
        arithmetic,
        classic,
        decimals,
        fractions_,
        linear,
        mixtures,
        percent,
        quadratics,
        ratios,
        sequences,
        shopping,
        speed,
        systems,
        units,
        work,
    )

    return REGISTRY
