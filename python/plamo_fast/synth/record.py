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
from collections.abc import Callable
from hashlib import blake2b
from json.encoder import c_make_encoder, encode_basestring

from plamo_fast.synth.registry import Generator, Problem

FINAL = {"ja": "答え: \\boxed{", "en": "Answer: \\boxed{"}


def problem_id(name: str, version: int, params: dict) -> str:
    return id_hasher(name, version)(repr(params))


def id_hasher(name: str, version: int) -> Callable[[str], str]:
    """:func:`problem_id` for one generator, from the params' repr: the ``NAME/VERSION/``
    prefix is hashed once and each call hashes the repr on a copy of that state (the same
    digest as hashing the whole text)."""
    prefix = blake2b(f"{name}/{version}/".encode(), digest_size=8)

    def hash_repr(params_repr: str) -> str:
        h = prefix.copy()
        h.update(params_repr.encode())
        return h.hexdigest()

    return hash_repr


def params_texts(params: dict) -> tuple[str, str]:
    """The params' JSON (the record's ``params``) and their repr (what the id hashes), from one
    encoding. Params are JSON-shaped (:class:`~plamo_fast.synth.registry.Problem`): for those
    the repr is the JSON with ``'`` for ``"``, unless a string needs escaping in either (a
    quote, a backslash, a control or other unprintable character); then it is ``repr``."""
    text = _json(params)
    if "'" in text or "\\" in text or not text.isprintable():
        return text, repr(params)
    return text, text.replace('"', "'")


def id_fraction(record_id: str) -> float:
    """Where an id falls in [0, 1): the holdout split takes ids below ``--holdout``."""
    return int(record_id, 16) / 2**64


def solution_text(problem: Problem, lang: str) -> str:
    return f"{problem.steps}\n\n{FINAL[lang]}{problem.answer}}}"


def build_record(
    gen: Generator, problem: Problem, record_id: str, lang: str, difficulty: str
) -> dict:
    return {
        "id": record_id,
        "generator": gen.name,
        "messages": [
            {"role": "user", "content": problem.question},
            {"role": "assistant", "content": solution_text(problem, lang)},
        ],
        "answer": problem.answer,
        "features": {"difficulty": difficulty, **problem.features},
        "params": problem.params,
    }


# One C encoder, built once (``json.dumps`` builds a new one per call), with the settings of
# ``json.dumps(value, ensure_ascii=False)``; ``encode_basestring`` is its string encoder.
_ENCODER = c_make_encoder(
    None, json.JSONEncoder().default, encode_basestring, None, ": ", ", ", False, False, True
)


def _json(value: dict) -> str:
    return "".join(_ENCODER(value, 0))


FEATURE_TEXTS = 100_000  # distinct features texts kept per run


def features_encoder() -> Callable[[str, str, dict], str]:
    """``encode(generator name, difficulty, problem features)``: the record's ``features``,
    ``{"difficulty": ..., **features}``, as JSON. Features take few values, so each distinct
    one is encoded once and its text reused (up to :data:`FEATURE_TEXTS` of them). The key holds
    the feature items, where ``1 == True``: a generator keeps one type per feature (tested)."""
    texts: dict[tuple, str] = {}

    def encode(name: str, difficulty: str, features: dict) -> str:
        key = (name, difficulty, *features.items())
        text = texts.get(key)
        if text is None:
            text = _json({"difficulty": difficulty, **features})
            if len(texts) < FEATURE_TEXTS:
                texts[key] = text
        return text

    return encode


def record_line(
    gen: Generator,
    problem: Problem,
    record_id: str,
    lang: str,
    features_json: str,
    params_json: str,
) -> str:
    """The JSON line (without the newline) of :func:`build_record`, the same text as
    ``json.dumps(build_record(...), ensure_ascii=False)``, written straight from the problem: the
    record's fixed keys are literal text and only the values are encoded (no dicts built and
    walked for every record). ``features_json`` comes from :func:`features_encoder`,
    ``params_json`` from :func:`params_texts`."""
    string = encode_basestring
    return (
        f'{{"id": {string(record_id)}, "generator": {string(gen.name)}, "messages": ['
        f'{{"role": "user", "content": {string(problem.question)}}}, '
        f'{{"role": "assistant", "content": {string(solution_text(problem, lang))}}}], '
        f'"answer": {string(problem.answer)}, "features": {features_json}, '
        f'"params": {params_json}}}'
    )
