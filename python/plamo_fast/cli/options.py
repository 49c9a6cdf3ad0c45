"""Options that several commands declare alike, declared once here: the generation backend
and how to reach it (``BACKEND``, ``BASE_URL``, ``API_KEY``, ``CONCURRENCY``,
``TENSOR_PARALLEL``, ``TIMEOUT``, ``RETRIES``), ``OVERWRITE`` and ``QUIET``.

``--base-url`` (and ``--judge-base-url``, ...): :func:`fleet_option` makes the option, which takes
one server or a fleet of them (:mod:`plamo_fast.generation.fleet`): the option repeated
(``--base-url URL1 --base-url URL2``), URLs separated by commas, or ``@FILE`` with one URL a line,
in any mix. The URLs are read and checked as the command line is parsed (an ``@FILE`` that
cannot be read, a URL that is not http(s), a server named twice: a usage error before any work);
the command gets them as a list (None without the option) and hands on ``fleet_url(value)``,
the one comma-separated string the backends, caches and run records take::

    from plamo_fast.cli.options import fleet_option, fleet_url

    BASE_URL = fleet_option("OpenAI-compatible server, e.g. http://localhost:8000/v1.")

    def command(base_url: Optional[List[str]] = BASE_URL, ...):
        run(..., base_url=fleet_url(base_url))
"""

from __future__ import annotations

import typer

from plamo_fast.generation.fleet import base_urls

FLEET_HELP = (
    "Several (a fleet): repeat the option, separate URLs by commas, or give @FILE with one URL "
    "a line; each request goes to the least busy server, and a failing server is rested while "
    "its requests go to the others."
)


def _urls(
    ctx: typer.Context, param: typer.CallbackParam, values: str | list[str] | None
) -> str | list[str] | None:
    """The option's callback: every URL its values give, checked, in order (a parameter
    declared ``Optional[str]``, not repeatable: as one comma-separated string); None without
    it."""
    urls = base_urls(values)
    if not urls:
        return None
    return urls if param.multiple else ",".join(urls)


def fleet_option(help: str, *param_decls: str):
    """An option naming one server or a fleet (see the module text): declare its parameter
    ``Optional[List[str]]`` (repeatable; a parameter declared ``Optional[str]`` takes commas
    and ``@FILE`` only, and gets them joined already)."""
    return typer.Option(None, *param_decls, callback=_urls, help=f"{help} {FLEET_HELP}")


def fleet_url(urls: str | list[str] | None) -> str | None:
    """The URLs of a :func:`fleet_option` as one comma-separated string (a single URL as it
    was given), or None."""
    if isinstance(urls, str):
        return urls
    return ",".join(urls) if urls else None


BACKEND = typer.Option(
    "auto",
    help="vllm, hf (transformers; runs on a CPU) or openai; auto: vllm "
    "when installed with a GPU, else hf.",
)
BASE_URL = fleet_option("OpenAI-compatible server, e.g. http://localhost:8000/v1.")
API_KEY = typer.Option(None, envvar="OPENAI_API_KEY", help="Key for --base-url.")
JUDGE_BASE_URL = fleet_option(
    "Judge's OpenAI-compatible server(s), e.g. https://api.openai.com/v1."
)
CONCURRENCY = typer.Option(8, help="Requests in flight per server (openai backend).")
TENSOR_PARALLEL = typer.Option(1, help="GPUs per model (vllm backend).")
TIMEOUT = typer.Option(600.0, help="Seconds per request (openai backend).")
RETRIES = typer.Option(
    4, help="Retries of a failed request (openai backend), beyond one try per server."
)
OVERWRITE = typer.Option(
    False, help="Replace an existing output file (never an input, never a folder)."
)
QUIET = typer.Option(False, "--quiet", "-q", help="No progress bar.")
