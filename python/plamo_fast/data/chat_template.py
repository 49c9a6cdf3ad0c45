"""Chat templates rendered exactly as transformers renders them, with the character spans of
the assistant answers located exactly, and the tokens trained after each answer.

Rendering uses the same Jinja setup as ``transformers`` (a sandboxed environment with
``trim_blocks``, ``lstrip_blocks``, loop controls, the ``{% generation %}`` tag, its ``tojson``,
``raise_exception`` and ``strftime_now``), so the text, and therefore the tokens, equal
``tokenizer.apply_chat_template(messages, tokenize=True)``. A template that raises for a
conversation (Gemma 2 for a system message) refuses that record, not the run.

Spans are found without guessing, answer by answer. The conversation is rendered a second time
with each trained answer replaced by a unique sentinel; the text around the sentinels is fixed,
and each answer must fill its gap exactly as written, or stripped of whitespace on the left, the
right or both (templates trim: Llama 3 both ends, Qwen3 and SmolLM3 a leading newline, Qwen3
only in the last turn). A template whose output depends on the answer's content (Qwen3 renders
the final answer's ``<think>`` block itself) is handled by rendering once more per answer with
only that answer replaced, and finding the answer where the two renderings differ. An answer
the template rewrites or drops (earlier ``<think>`` blocks) cannot be located and its record is
refused with :class:`TemplateRewritesContentError`, naming the message and what changed, rather
than silently mislabelled.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache

from plamo_fast.data.conversation import BadRecordError
from plamo_fast.errors import UsageError

SENTINEL = "\ue000plamo-fast-span-{}\ue001"
# Cut points tried at each end of an answer (whitespace characters removed): all up to this
# many, and all of the whitespace.
MAX_CUT = 8


class TemplateRefusedError(BadRecordError):
    """The chat template raised for this conversation (e.g. a role it does not support)."""

    drop_reason = "template_error"


class TemplateRewritesContentError(BadRecordError):
    """The chat template changes or drops an answer, so its tokens cannot be located."""

    drop_reason = "template_rewrites"


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


def check_template(source: str) -> None:
    """Compiles ``source`` once, so a template that cannot be parsed is a usage error up front."""
    import jinja2

    try:
        compile_template(source)
    except jinja2.TemplateSyntaxError as exc:
        raise UsageError(f"the chat template cannot be parsed: {exc} (line {exc.lineno})") from None


def _template_errors() -> tuple[type[BaseException], ...]:
    """What a template raises for a conversation it cannot render: its ``raise_exception``,
    undefined attributes, and Python errors of the operations it applies to the messages."""
    import jinja2

    return (jinja2.TemplateError, TypeError, ValueError, LookupError, AttributeError)


def render_record(template: str, messages: list[dict], special_tokens: dict[str, str]) -> str:
    """:func:`render`, with a template error turned into :class:`TemplateRefusedError`."""
    try:
        return render(template, messages, special_tokens)
    except _template_errors() as exc:
        raise TemplateRefusedError(f"the template refused this conversation: {exc}") from None


def render_with_spans(
    template: str, messages: list[dict], special_tokens: dict[str, str], trained: list[int]
) -> tuple[str, list[tuple[int, int]]]:
    """Renders ``messages`` and returns the text and the character spans of the answers at
    indices ``trained`` (assistant messages), in order: each span holds the answer exactly as
    the template rendered it (as written, or with surrounding whitespace trimmed)."""
    text = render_record(template, messages, special_tokens)
    if not trained:
        return text, []
    contents = [messages[i]["content"] for i in trained]
    spans = _spans_from_skeleton(template, messages, special_tokens, trained, text, contents)
    if spans is None:
        spans = [_locate_alone(template, messages, special_tokens, text, i) for i in trained]
        for k in range(1, len(spans)):
            if spans[k][0] < spans[k - 1][1]:
                raise TemplateRewritesContentError(
                    f"messages {trained[k - 1]} and {trained[k]} (assistant) overlap in the "
                    "rendering, so their tokens cannot be told apart"
                )
    return text, spans


def _spans_from_skeleton(template, messages, special_tokens, trained, text, contents):
    """The fast path: one rendering with every trained answer replaced by a sentinel; None when
    the text does not fit that skeleton (the template looks at the answers' content)."""
    marked = [dict(m) for m in messages]
    for k, i in enumerate(trained):
        marked[i]["content"] = SENTINEL.format(k)
    try:
        skeleton = render(template, marked, special_tokens)
    except _template_errors():
        return None
    pieces, cursor = [], 0
    for k in range(len(trained)):
        sentinel = SENTINEL.format(k)
        at = skeleton.find(sentinel, cursor)
        if at < 0 or skeleton.find(sentinel, at + 1) >= 0:
            return None
        pieces.append(skeleton[cursor:at])
        cursor = at + len(sentinel)
    pieces.append(skeleton[cursor:])
    return _fit(text, pieces, contents)


def _cuts(content: str) -> list[tuple[int, int]]:
    """``(a, b)`` such that ``content[a:b]`` is the content with some of its leading and
    trailing whitespace removed, the least trimmed first (as written comes first)."""
    n = len(content)
    lead = n - len(content.lstrip())
    trail = n - len(content.rstrip())
    starts = sorted({*range(min(lead, MAX_CUT) + 1), lead})
    ends = sorted({n - t for t in (*range(min(trail, MAX_CUT) + 1), trail)}, reverse=True)
    pairs = [(a, b) for a in starts for b in ends if a <= b]
    return sorted(pairs, key=lambda ab: (ab[0] + n - ab[1], ab[0]))


def _fit(text: str, pieces: list[str], contents: list[str]) -> list[tuple[int, int]] | None:
    """Spans such that ``text == pieces[0] + r0 + pieces[1] + r1 + ... + pieces[-1]`` where each
    ``ri`` is ``contents[i]`` as written or trimmed (:func:`_cuts`), chosen answer by answer
    (depth-first, least trimmed first); None when there are none."""
    if not text.startswith(pieces[0]):
        return None

    def options(i: int, cursor: int):
        content, after = contents[i], pieces[i + 1]
        end = cursor + len(content)
        if text.startswith(content, cursor) and text.startswith(after, end):
            yield cursor, end  # as written: the usual case, without computing the trims
        for a, b in _cuts(content)[1:]:
            end = cursor + b - a
            if text.startswith(after, end) and text[cursor:end] == content[a:b]:
                yield cursor, end

    # stack[i] yields the choices for answer i; spans holds the choices of answers 0..i-1.
    spans: list[tuple[int, int]] = []
    stack = [options(0, len(pieces[0]))]
    while stack:
        i = len(stack) - 1
        span = next(stack[-1], None)
        if span is None:  # answer i cannot be placed: change answer i - 1
            stack.pop()
            if spans:
                spans.pop()
            continue
        cursor = span[1] + len(pieces[i + 1])
        if i + 1 < len(contents):
            spans.append(span)
            stack.append(options(i + 1, cursor))
        elif cursor == len(text):
            return [*spans, span]
    return None


def _locate_alone(template, messages, special_tokens, text: str, i: int) -> tuple[int, int]:
    """The span of answer ``i`` found by itself: the conversation is rendered with only that
    answer replaced by a sentinel; the part of ``text`` that differs from that rendering is
    where the answer's content shows, and the answer (as written or trimmed) must cover it,
    exactly once."""
    marked = [dict(m) for m in messages]
    marked[i]["content"] = SENTINEL.format("x")
    content = messages[i]["content"]
    try:
        other = render(template, marked, special_tokens)
    except _template_errors() as exc:
        raise TemplateRewritesContentError(
            f"message {i} (assistant): the template's output depends on this answer's text "
            f"({exc}), so its tokens cannot be located"
        ) from None
    first = _common_prefix(text, other)
    last = len(text) - _common_suffix(text, other, limit=min(len(text), len(other)) - first)
    for a, b in _cuts(content):
        answer = content[a:b]
        if answer and last == first:
            continue  # nothing of the text depends on the answer: the template drops it
        found = _occurrences(text, answer, max(0, last - len(answer)), first)
        if len(found) == 1:
            return found[0], found[0] + len(answer)
        if len(found) > 1:
            raise TemplateRewritesContentError(
                f"message {i} (assistant) occurs more than once where the template renders it, "
                "so its tokens cannot be located exactly"
            )
    later = any(m["role"] == "assistant" for m in messages[i + 1 :])
    raise TemplateRewritesContentError(
        f"message {i} (assistant) cannot be located in the rendering: "
        f"{_what_changed(content, text[first:last])}; plamo-fast refuses rather than mislabel "
        "it" + (" (--last-turn-only trains only the final answer)" if later else "")
    )


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo], a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


def _common_suffix(a: str, b: str, limit: int) -> int:
    return _common_prefix(a[::-1][:limit], b[::-1][:limit])


def _occurrences(text: str, answer: str, lowest: int, highest: int) -> list[int]:
    """Starts ``s`` in ``[lowest, highest]`` where ``text`` holds ``answer`` (at most two)."""
    found, at = [], lowest
    while len(found) < 2:
        at = text.find(answer, at, highest + len(answer))
        if at < 0:
            break
        found.append(at)
        at += 1
    return found


def _clip(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _what_changed(content: str, rendered: str) -> str:
    if not rendered:
        return f"the template drops it (the answer reads {_clip(content)})"
    return (
        f"the template rewrites it (it renders {_clip(rendered)} where the answer reads "
        f"{_clip(content)})"
    )


class StopRule:
    """The tokens trained after an answer, beyond the native rule (which trains through the
    first special token when only whitespace precedes it): when only special tokens and
    whitespace stand between the answer and a token of the model's stop set, the span is
    extended to that stop token, so the native rule then trains through it (Command R7B ends
    an answer ``<|END_RESPONSE|><|END_OF_TURN_TOKEN|>`` and stops on the second). ``specials``
    are the special tokens that may stand between (those the template writes); ``stops`` the
    stop set, special tokens of the tokenizer."""

    def __init__(self, specials: Iterable[str], stops: Iterable[str]):
        self.stops = tuple(dict.fromkeys(stops))
        specials = sorted({*specials, *self.stops}, key=len, reverse=True)
        self.pattern = None
        if self.stops:
            gap = "|".join(map(re.escape, specials))
            stop = "|".join(map(re.escape, sorted(self.stops, key=len, reverse=True)))
            self.pattern = re.compile(rf"(?:\s|{gap})*?({stop})")

    def extend(self, text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
        if self.pattern is None:
            return spans
        out = []
        for k, (start, end) in enumerate(spans):
            limit = spans[k + 1][0] if k + 1 < len(spans) else len(text)
            found = self.pattern.match(text, end)
            if found is not None and found.start(1) <= limit:
                end = found.start(1)
            out.append((start, end))
        return out
