//! Tokenize rendered conversations and build response-only labels from character spans.
//!
//! The caller renders each conversation with its chat template and gives the character spans of
//! the assistant contents to train. A token is trained when it overlaps such a span (a token
//! that merges across the span's edge is trained: it carries trained text). After each span,
//! the tokens up to and including the first special token are trained too, so the model learns
//! to emit the end of turn (`<|im_end|>`, `<|eot_id|>`, `<end_of_turn>`, or the next role header
//! in templates whose turns end there); whitespace-only tokens before it are trained, and any
//! other text before it stops the scan. Everything else is labelled IGNORE_INDEX.

use std::collections::HashSet;
use std::path::Path;

use rayon::prelude::*;
use tokenizers::Tokenizer;

use crate::error::{Error, Result};

pub const IGNORE_INDEX: i32 = -100;

/// Character ranges `[start, end)` in a text.
pub type Spans = Vec<(usize, usize)>;

pub struct ChatTokenizer {
    tokenizer: Tokenizer,
    special_ids: HashSet<u32>,
}

/// One tokenized document.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MaskedDoc {
    pub ids: Vec<u32>,
    pub labels: Vec<i32>,
}

/// Character ranges to byte ranges of `text` (spans in order, within the text).
fn char_spans_to_bytes(text: &str, spans: &[(usize, usize)]) -> Result<Spans> {
    let mut out = Vec::with_capacity(spans.len());
    let mut chars = text
        .char_indices()
        .map(|(b, _)| b)
        .chain(std::iter::once(text.len()));
    let (mut char_pos, mut byte_pos) = (0usize, chars.next().unwrap_or(0));
    let mut to_byte = |target: usize| -> Result<usize> {
        while char_pos < target {
            byte_pos = chars.next().ok_or_else(|| {
                Error::InvalidArgument(format!("span end {target} beyond the text"))
            })?;
            char_pos += 1;
        }
        if char_pos != target {
            return Err(Error::InvalidArgument("spans must be in order".into()));
        }
        Ok(byte_pos)
    };
    for &(start, end) in spans {
        if end < start {
            return Err(Error::InvalidArgument(format!(
                "span {start}..{end} is reversed"
            )));
        }
        out.push((to_byte(start)?, to_byte(end)?));
    }
    Ok(out)
}

impl ChatTokenizer {
    pub fn from_file(path: &Path) -> Result<Self> {
        let tokenizer = Tokenizer::from_file(path)
            .map_err(|e| Error::invalid_file(path, format!("cannot load tokenizer: {e}")))?;
        let special_ids = tokenizer
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, token)| token.special)
            .map(|(id, _)| id)
            .collect();
        Ok(ChatTokenizer {
            tokenizer,
            special_ids,
        })
    }

    /// Ids and byte offsets (cheaper than character offsets, which `encode_batch` computes).
    fn encode(&self, text: &str) -> Result<(Vec<u32>, Spans)> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| Error::InvalidArgument(format!("tokenization failed: {e}")))?;
        Ok((encoding.get_ids().to_vec(), encoding.get_offsets().to_vec()))
    }

    /// Token ids of `text` without added special tokens (what `apply_chat_template` gives).
    pub fn encode_ids(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.encode(text)?.0)
    }

    /// Tokenizes `text` and labels the tokens of `spans` (character ranges, in order).
    pub fn encode_masked(&self, text: &str, spans: &[(usize, usize)]) -> Result<MaskedDoc> {
        let (ids, offsets) = self.encode(text)?;
        let mut labels = vec![IGNORE_INDEX; ids.len()];
        let bytes = text.as_bytes();
        let byte_spans = char_spans_to_bytes(text, spans)?;
        let mut t = 0;
        for &(start, end) in &byte_spans {
            while t < ids.len() && offsets[t].1 <= start {
                t += 1;
            }
            while t < ids.len() && offsets[t].0 < end {
                if offsets[t].1 > start {
                    labels[t] = ids[t] as i32;
                }
                t += 1;
            }
            // The end of turn: through the first special token, across whitespace only.
            let mut k = t;
            while k < ids.len() {
                if self.special_ids.contains(&ids[k]) {
                    for (label, &id) in labels[t..=k].iter_mut().zip(&ids[t..=k]) {
                        *label = id as i32;
                    }
                    break;
                }
                let (s, e) = offsets[k];
                let whitespace = s < e
                    && std::str::from_utf8(&bytes[s..e.min(bytes.len())])
                        .is_ok_and(|piece| piece.chars().all(char::is_whitespace));
                if !whitespace {
                    break;
                }
                k += 1;
            }
        }
        Ok(MaskedDoc { ids, labels })
    }

    /// [`Self::encode_masked`] over many documents in parallel; results keep the input order.
    pub fn encode_masked_batch(&self, docs: &[(String, Spans)]) -> Result<Vec<MaskedDoc>> {
        docs.par_iter()
            .map(|(text, spans)| self.encode_masked(text, spans))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_spans_become_byte_spans() {
        let text = "aé日本b";
        // chars: a(0) é(1) 日(2) 本(3) b(4); bytes: a 0, é 1..3, 日 3..6, 本 6..9, b 9
        assert_eq!(
            char_spans_to_bytes(text, &[(1, 2), (2, 4), (5, 5)]).unwrap(),
            vec![(1, 3), (3, 9), (10, 10)]
        );
        assert!(char_spans_to_bytes(text, &[(0, 9)]).is_err());
        assert!(char_spans_to_bytes(text, &[(3, 4), (0, 1)]).is_err());
        assert!(char_spans_to_bytes(text, &[(2, 1)]).is_err());
    }
}
