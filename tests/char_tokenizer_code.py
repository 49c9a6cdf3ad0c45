"""A Python-only tokenizer (no tokenizer.json), loaded through trust_remote_code like PLaMo's.
Written into test folders as ``tokenization_char.py``."""

SOURCE = r'''
from transformers import PreTrainedTokenizer

SPECIAL = ["<s>", "</s>", "<|im_start|>", "<|im_end|>", "<|plamo:op|>"]


class CharTokenizer(PreTrainedTokenizer):
    """Special tokens whole, every other character one token (ids from its code point)."""

    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, **kwargs):
        self._special = {t: i for i, t in enumerate(SPECIAL)}
        super().__init__(**kwargs)
        self.add_special_tokens({"additional_special_tokens": SPECIAL[2:]})

    @property
    def vocab_size(self):
        return 0x30000

    def get_vocab(self):
        return dict(self._special)

    def _tokenize(self, text, **kwargs):
        return list(text)

    def _convert_token_to_id(self, token):
        if token in self._special:
            return self._special[token]
        return len(SPECIAL) + ord(token)

    def _convert_id_to_token(self, index):
        if index < len(SPECIAL):
            return SPECIAL[index]
        return chr(index - len(SPECIAL))

    def convert_tokens_to_string(self, tokens):
        return "".join(tokens)

    def save_vocabulary(self, save_directory, filename_prefix=None):
        return ()
'''
