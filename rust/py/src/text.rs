//! Bindings of the matching-form normalization (used by tests and by Python-side reports).

use pyo3::prelude::*;

/// The matching form of `text` (NFKC, case-folded, no whitespace/punctuation/symbols).
#[pyfunction]
pub fn normalize_text(py: Python<'_>, text: String) -> String {
    py.detach(|| plamo_fast_core::text::normalize_str(&text))
}

/// The matching form and, per character, the `(start, end)` character offsets of the original
/// text it came from.
#[pyfunction]
pub fn normalize_with_spans(py: Python<'_>, text: String) -> (String, Vec<(usize, usize)>) {
    py.detach(|| {
        let n = plamo_fast_core::text::normalize(&text);
        let spans = n
            .spans
            .iter()
            .map(|&(s, e)| (char_offset(&text, s), char_offset(&text, e)))
            .collect();
        (n.as_string(), spans)
    })
}

/// The character offset of byte offset `byte` (a character boundary) in `text`.
pub fn char_offset(text: &str, byte: u32) -> usize {
    text[..byte as usize].chars().count()
}
