"""The record of one generated problem, and its id.

Record fields (one JSON object per line)::

    id         16 hex digits: blake2b-64 of "NAME/VERSION/PARAMS" (the params' repr);
               one id is one problem, whatever the language or wording
    generator  the generator's name, e.g. "fractions.add"
    messages   [user: the problem, assistant: the worked solution]
    answer     the exact answer as text (integer, decimal, reduced fraction p/q, or a mixed
               number "w p/q" when the problem asks for one)
    features   difficulty and the generator's features (carries, reduces, eliminate, ...)
    params     the numbers that fix the problem (what the id hashes)

The worked solution always ends with one line holding the answer in a box: ``答え: \\boxed{A}``
in Japanese, ``Answer: \\boxed{A}`` in English, where ``A`` is the ``answer`` field verbatim.
:func:`plamo_fast.sample.verify_math.verify` reads the last ``\\boxed{}`` first, so
``plamo-fast score --verifier math`` gives the solution 1.0 against its own ``answer``.
"""

from __future__ import annotations

import json
from hashlib import blake2b
from json.encoder import c_make_encoder, encode_basestring

from plamo_fast.synth.registry import Generator, Problem

FINAL = {"ja": "答え: \\boxed{", "en": "Answer: \\boxed{"}


def problem_id(name: str, version: int, params: dict) -> str:
    return blake2b(f"{name}/{version}/{params!r}".encode(), digest_size=8).hexdigest()


def id_fraction(record_id: str) -> float:
    """Where an id falls in [0, 1): the holdout split takes ids below ``--holdout``."""
    return int(record_id, 16) / 2**64


def solution_text(problem: Problem, lang: str) -> str:
    return f"{problem.steps}\n\n{FINAL[lang]}{problem.answer}}}"


def build_record(
    gen: Generator, problem: Problem, record_id: str, lang: str, features: dict
) -> dict:
    return {
        "id": record_id,
        "generator": gen.name,
        "messages": [
            {"role": "user", "content": problem.question},
            {"role": "assistant", "content": solution_text(problem, lang)},
        ],
        "answer": problem.answer,
        "features": features,
        "params": problem.params,
    }


# One C encoder, built once (``json.dumps`` builds a new one per call): the same text as
# ``json.dumps(record, ensure_ascii=False)``, a third faster.
_ENCODER = c_make_encoder(
    None, json.JSONEncoder().default, encode_basestring, None, ": ", ", ", False, False, True
)


def record_line(record: dict) -> str:
    """One record as a JSON line (without the newline)."""
    return "".join(_ENCODER(record, 0))
