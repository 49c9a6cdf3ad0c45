"""Reference response-only labels, built independently of the native path: spans located by
rendering each conversation prefix (the rendering up to an assistant message), tokens and
character offsets from the Python ``tokenizers`` binding, and the labelling rule spelled out
token by token.

Rule: a token is trained when it overlaps an assistant content span; after each span, tokens
through the first special token are trained when only whitespace tokens precede it."""

from __future__ import annotations

IGNORE_INDEX = -100


def common_prefix_length(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def assistant_spans(render, messages: list[dict], trained: list[int]) -> tuple[str, list]:
    """``render(messages) -> str``; spans of the trained messages' contents in the full text."""
    text = render(messages)
    spans = []
    for i in trained:
        start = common_prefix_length(render(messages[:i]) if i else "", text)
        content = messages[i]["content"]
        # A template that trims contents renders the same text for the trimmed content.
        stripped = [dict(m) for m in messages]
        stripped[i]["content"] = content.strip()
        if content != content.strip() and render(stripped) == text:
            content = content.strip()
        at = text.find(content, start)
        assert at >= 0, f"content of message {i} not in the rendering"
        spans.append((at, at + len(content)))
    return text, spans


def labels_for(tokenizer, text: str, spans: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """``tokenizer``: a ``tokenizers.Tokenizer``. Returns (ids, labels)."""
    encoding = tokenizer.encode(text, add_special_tokens=False)
    ids, offsets = encoding.ids, encoding.offsets
    special = {i for i, t in tokenizer.get_added_tokens_decoder().items() if t.special}
    labels = [IGNORE_INDEX] * len(ids)
    for start, end in spans:
        last = None
        for t, (s, e) in enumerate(offsets):
            if s < end and e > start:
                labels[t] = ids[t]
                last = t
        k = (
            (last + 1)
            if last is not None
            else next((t for t, (s, _) in enumerate(offsets) if s >= end), len(ids))
        )
        first = k
        while k < len(ids):
            if ids[k] in special:
                for j in range(first, k + 1):
                    labels[j] = ids[j]
                break
            s, e = offsets[k]
            if not (s < e and text[s:e].isspace()):
                break
            k += 1
    return ids, labels
