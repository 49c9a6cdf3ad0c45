"""Reference response-only labels, built independently of the native path: spans located by
rendering each conversation prefix (the rendering up to an assistant message) and re-rendering
with the answer trimmed, tokens and character offsets from the Python ``tokenizers`` binding,
and the labelling rule spelled out token by token.

Rule: a token is trained when it overlaps an answer span. After each span, the tokens are
scanned while they are special or whitespace: if a token of the stop set comes first, the
tokens through it are trained; otherwise the tokens through the first special token are
trained when only whitespace tokens precede it."""

from __future__ import annotations

from plamo_fast.data.conversation import IGNORE_INDEX

__all__ = ["IGNORE_INDEX", "assistant_spans", "common_prefix_length", "labels_for"]


def common_prefix_length(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _trimmed(content: str) -> list[str]:
    """The forms a template may render an answer in, most trimmed first."""
    forms = [content.strip(), content.lstrip(), content.rstrip(), content]
    return list(dict.fromkeys(forms))


def assistant_spans(render, messages: list[dict], trained: list[int]) -> tuple[str, list]:
    """``render(messages) -> str``; spans of the trained messages' contents in the full text.
    A template that trims an answer renders the same text for the trimmed answer: the most
    trimmed form that does is the one in the text."""
    text = render(messages)
    spans = []
    for i in trained:
        start = common_prefix_length(render(messages[:i]) if i else "", text)
        for form in _trimmed(messages[i]["content"]):
            variant = [dict(m) for m in messages]
            variant[i]["content"] = form
            at = text.find(form, start)
            if at >= 0 and render(variant) == text:
                spans.append((at, at + len(form)))
                break
        else:
            raise AssertionError(f"content of message {i} not in the rendering")
    return text, spans


def labels_for(
    tokenizer, text: str, spans: list[tuple[int, int]], stop_ids=()
) -> tuple[list[int], list[int]]:
    """``tokenizer``: a ``tokenizers.Tokenizer``; ``stop_ids``: the model's stop set. Returns
    (ids, labels)."""
    encoding = tokenizer.encode(text, add_special_tokens=False)
    ids, offsets = encoding.ids, encoding.offsets
    special = {i for i, t in tokenizer.get_added_tokens_decoder().items() if t.special}

    def whitespace(k: int) -> bool:
        s, e = offsets[k]
        return s < e and text[s:e].isspace()

    labels = [IGNORE_INDEX] * len(ids)
    for start, end in spans:
        last = None
        for t, (s, e) in enumerate(offsets):
            if s < end and e > start:
                labels[t] = ids[t]
                last = t
        first = (
            (last + 1)
            if last is not None
            else next((t for t, (s, _) in enumerate(offsets) if s >= end), len(ids))
        )
        through = None
        for k in range(first, len(ids)):  # the stop set, over special tokens and whitespace
            if ids[k] in stop_ids:
                through = k
                break
            if not (ids[k] in special or whitespace(k)):
                break
        if through is None:  # the first special token, over whitespace only
            for k in range(first, len(ids)):
                if ids[k] in special:
                    through = k
                    break
                if not whitespace(k):
                    break
        if through is not None:
            for j in range(first, through + 1):
                labels[j] = ids[j]
    return ids, labels
