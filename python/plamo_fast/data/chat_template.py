"""Chat templates rendered exactly as transformers renders them, with the character spans of
the assistant contents located exactly.

Rendering uses the same Jinja setup as ``transformers`` (a sandboxed environment with
``trim_blocks``, ``lstrip_blocks``, loop controls, the ``{% generation %}`` tag, its ``tojson``,
``raise_exception`` and ``strftime_now``), so the text, and therefore the tokens, equal
``tokenizer.apply_chat_template(messages, tokenize=True)``.

Spans are found without guessing: each trained assistant message is rendered a second time with
its content replaced by a unique sentinel; the sentinels' positions give the spans, and
substituting the contents back must reproduce the real rendering exactly. A template that trims
the content (Llama 3) is recognised by substituting the trimmed content; a template that rewrites
or drops it (e.g. removes earlier ``<think>`` blocks) cannot reproduce the rendering and is
refused with :class:`TemplateRewritesContentError` rather than silently mis-masked.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache

from plamo_fast.errors import PlamoFastError

SENTINEL = "\ue000plamo-fast-span-{}\ue001"


class TemplateRewritesContentError(PlamoFastError, ValueError):
    """The chat template changes assistant contents, so their tokens cannot be located."""


@lru_cache(maxsize=16)
def compile_template(source: str):
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationTag(jinja2.ext.Extension):
        """``{% generation %}...{% endgeneration %}`` renders its body (spans come from
        sentinels)."""

        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(
                lineno
            )

        def _render(self, caller):
            return caller()

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(
            x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
        )

    def strftime_now(format):
        return datetime.now().strftime(format)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTag, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env.from_string(source)


def render(
    template: str,
    messages: list[dict],
    special_tokens: dict[str, str],
    add_generation_prompt: bool = False,
) -> str:
    """``template.render(messages=..., ...)`` as transformers calls it. The context is built
    directly (globals merged once per call into a shared context), which halves Jinja's
    per-call overhead and renders the same text."""
    compiled = compile_template(template)
    variables = {
        **compiled.globals,
        **special_tokens,
        "messages": messages,
        "tools": None,
        "documents": None,
        "add_generation_prompt": add_generation_prompt,
    }
    context = compiled.new_context(variables, shared=True)
    return compiled.environment.concat(compiled.root_render_func(context))


def render_with_spans(
    template: str, messages: list[dict], special_tokens: dict[str, str], trained: list[int]
) -> tuple[str, list[tuple[int, int]]]:
    """Renders ``messages`` and returns the text and the character spans of the contents of the
    messages at indices ``trained`` (assistant messages), in order."""
    text = render(template, messages, special_tokens)
    if not trained:
        return text, []
    marked = [dict(m) for m in messages]
    for k, i in enumerate(trained):
        marked[i]["content"] = SENTINEL.format(k)
    skeleton = render(template, marked, special_tokens)
    positions = []
    for k in range(len(trained)):
        sentinel = SENTINEL.format(k)
        at = skeleton.find(sentinel)
        if at < 0 or skeleton.find(sentinel, at + 1) >= 0:
            raise TemplateRewritesContentError(
                f"the chat template {'drops' if at < 0 else 'repeats'} the content of message "
                f"{trained[k]} (assistant), so its tokens cannot be located; use a template that "
                "renders each assistant message verbatim (or --last-turn-only)"
            )
        positions.append(at)
    for trim in (False, True):
        pieces, spans, cursor, out_len = [], [], 0, 0
        for k, at in enumerate(positions):
            content = messages[trained[k]]["content"]
            if trim:
                content = content.strip()
            pieces.append(skeleton[cursor:at])
            out_len += at - cursor
            spans.append((out_len, out_len + len(content)))
            pieces.append(content)
            out_len += len(content)
            cursor = at + len(SENTINEL.format(k))
        pieces.append(skeleton[cursor:])
        if "".join(pieces) == text:
            return text, spans
    raise TemplateRewritesContentError(
        "the chat template rewrites assistant contents (the rendering differs from the template "
        "applied to the messages as given), so trained tokens cannot be located exactly; "
        "plamo-fast refuses rather than mis-mask"
    )
