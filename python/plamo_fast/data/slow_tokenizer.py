"""The slower path for tokenizers that exist only as Python classes (no ``tokenizer.json``), such
as PLaMo's: tokens come from the tokenizer itself (``tokenizer(text, add_special_tokens=False)``,
what ``apply_chat_template`` uses), and the response labels from where the tokenizations of the
text up to each span boundary stop agreeing with the whole text's, so no character offsets are
needed. The rule matches the native one: a token overlapping a span (including one merged across
its edge) is trained, then the tokens through the first special token after it when only
whitespace precedes it. About three tokenizations per span instead of one, in Python."""

from __future__ import annotations

import numpy as np

from plamo_fast.data.conversation import IGNORE_INDEX


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class SlowChatTokenizer:
    """Wraps a transformers tokenizer object with the native ``ChatTokenizer`` interface."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.special_ids = set(tokenizer.all_special_ids) | {
            i
            for i, t in getattr(tokenizer, "added_tokens_decoder", {}).items()
            if getattr(t, "special", False)
        }

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    def special_tokens_by_id(self) -> dict[int, str]:
        """The special tokens, id to text."""
        ids = sorted(self.special_ids)
        return dict(zip(ids, self.tokenizer.convert_ids_to_tokens(ids), strict=True))

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode_ids(self, text: str) -> list[int]:
        return self._ids(text)

    def _is_whitespace(self, token_id: int) -> bool:
        text = self.tokenizer.decode(
            [token_id], skip_special_tokens=False, clean_up_tokenization_spaces=False
        )
        return bool(text) and text.isspace()

    def encode_masked(self, text: str, spans: list[tuple[int, int]]) -> tuple[list, list]:
        ids = self._ids(text)
        labels = [IGNORE_INDEX] * len(ids)
        for start, end in spans:
            before = self._ids(text[:start])
            first = _common_prefix(ids, before)
            upto = self._ids(text[:end])
            agreed = _common_prefix(ids, upto)
            # A token that differs from the prefix's tokenization straddles the boundary.
            last = agreed if agreed < len(upto) else agreed - 1
            for t in range(first, min(last, len(ids) - 1) + 1):
                labels[t] = ids[t]
            k = last + 1
            while k < len(ids):
                if ids[k] in self.special_ids:
                    for j in range(last + 1, k + 1):
                        labels[j] = ids[j]
                    break
                if not self._is_whitespace(ids[k]):
                    break
                k += 1
        return ids, labels

    def encode_masked_batch(self, texts: list[str], spans: list[list]) -> tuple[bytes, ...]:
        """The native method's return format: raw ids, labels and document offsets."""
        all_ids, all_labels, offsets = [], [], [0]
        for text, span in zip(texts, spans, strict=True):
            ids, labels = self.encode_masked(text, span)
            all_ids += ids
            all_labels += labels
            offsets.append(len(all_ids))
        return (
            np.asarray(all_ids, dtype="<u4").tobytes(),
            np.asarray(all_labels, dtype="<i4").tobytes(),
            np.asarray(offsets, dtype="<u8").tobytes(),
        )
