//! The matching form of a text: NFKC, case-folded, with whitespace, punctuation, symbols and
//! control/format characters removed, and combining marks kept (が stays が, unlike tools that
//! strip marks). It is used for matching only; outputs keep the original text.
//!
//! Each normalized character remembers the byte span of the original characters it came from,
//! so a match can be reported as a span of the original text. To know that span, the text is
//! normalized cluster by cluster: a cluster is a starter plus every following character that can
//! combine with it (non-zero combining class, or NFC_Quick_Check=Maybe such as the half-width
//! voiced mark ﾞ). Per cluster, the result is NFKC(casefold(NFKC(cluster))), which equals the
//! whole-text form except where composition would cross clusters (not seen in practice; the
//! Python reference `plamo_fast.reference.normalize` is the executable spec and the tests compare).

use unicode_general_category::{get_general_category, GeneralCategory as Gc};
use unicode_normalization::char::{canonical_combining_class, decompose_compatible};
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

/// A normalized text: its characters and, for each, the original byte span it came from.
#[derive(Debug, Default, Clone)]
pub struct Normalized {
    pub chars: Vec<char>,
    pub spans: Vec<(u32, u32)>,
    /// Indices of `chars` that removed characters (spaces, punctuation) preceded.
    pub breaks: Vec<u32>,
    removed_pending: bool,
}

impl Normalized {
    /// The original byte span covered by normalized characters `start..end` (non-empty).
    pub fn source_span(&self, start: usize, end: usize) -> (u32, u32) {
        (self.spans[start].0, self.spans[end - 1].1)
    }

    pub fn as_string(&self) -> String {
        self.chars.iter().collect()
    }

    /// The matching form with one space where removed characters stood between two digits
    /// ("What is 12 + 3?" → "whatis12 3"): the key of dedup, which must not join "12 + 3" and
    /// "1 + 23", while "東京、日本" and "東京日本" stay equal as in the matching form.
    pub fn separated(&self) -> String {
        let mut out = String::with_capacity(self.chars.len() + self.breaks.len());
        let mut breaks = self.breaks.iter().peekable();
        for (i, &c) in self.chars.iter().enumerate() {
            if breaks.next_if(|&&b| b as usize == i).is_some()
                && c.is_numeric()
                && self.chars[i - 1].is_numeric()
            {
                out.push(' ');
            }
            out.push(c);
        }
        out
    }

    fn push(&mut self, c: char, span: (u32, u32)) {
        if self.removed_pending && !self.chars.is_empty() {
            self.breaks.push(self.chars.len() as u32);
        }
        self.removed_pending = false;
        self.chars.push(c);
        self.spans.push(span);
    }
}

/// Whether `c` is kept in the matching form.
fn is_kept(c: char) -> bool {
    !matches!(
        get_general_category(c),
        Gc::SpaceSeparator
            | Gc::LineSeparator
            | Gc::ParagraphSeparator
            | Gc::Control
            | Gc::Format
            | Gc::ConnectorPunctuation
            | Gc::DashPunctuation
            | Gc::OpenPunctuation
            | Gc::ClosePunctuation
            | Gc::InitialPunctuation
            | Gc::FinalPunctuation
            | Gc::OtherPunctuation
            | Gc::MathSymbol
            | Gc::CurrencySymbol
            | Gc::ModifierSymbol
            | Gc::OtherSymbol
    )
}

/// Kana and CJK ideographs that are their own matching form (no decomposition, case or width
/// folding, kept) and start a cluster: most Japanese text, taken on a fast path.
fn is_stable_cjk(c: char) -> bool {
    matches!(c, '\u{3041}'..='\u{3096}' | '\u{30A1}'..='\u{30F6}' | '\u{4E00}'..='\u{9FFF}')
}

/// Whether a decomposed character starts a new cluster (cannot combine with what precedes).
fn starts_cluster(c: char) -> bool {
    canonical_combining_class(c) == 0 && is_nfc_quick(std::iter::once(c)) != IsNormalized::Maybe
}

/// Normalize `text` into its matching form, with spans.
pub fn normalize(text: &str) -> Normalized {
    let mut out = Normalized {
        chars: Vec::with_capacity(text.len()),
        spans: Vec::with_capacity(text.len()),
        ..Default::default()
    };
    let mut cluster: Vec<char> = Vec::new();
    let mut span = (0u32, 0u32);
    let mut scratch = String::new();
    for (at, c) in text.char_indices() {
        let end = (at + c.len_utf8()) as u32;
        let at = at as u32;
        if c.is_ascii() || is_stable_cjk(c) {
            // Fast path: an ASCII character, kana or ideograph is its own decomposition and
            // starts a cluster.
            flush(&mut cluster, span, &mut out, &mut scratch);
            span = (at, end);
            cluster.push(c);
            continue;
        }
        decompose_compatible(c, |d| {
            if starts_cluster(d) && !cluster.is_empty() {
                flush(&mut cluster, span, &mut out, &mut scratch);
            }
            if cluster.is_empty() {
                span = (at, end);
            } else {
                span.1 = end;
            }
            cluster.push(d);
        });
    }
    flush(&mut cluster, span, &mut out, &mut scratch);
    out
}

fn flush(cluster: &mut Vec<char>, span: (u32, u32), out: &mut Normalized, scratch: &mut String) {
    match cluster[..] {
        [] => return,
        [c] if c.is_ascii() => {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase(), span);
            } else {
                out.removed_pending = true;
            }
            cluster.clear();
            return;
        }
        [c] if is_stable_cjk(c) => {
            out.push(c, span);
            cluster.clear();
            return;
        }
        _ => {}
    }
    scratch.clear();
    scratch.extend(cluster.iter().copied().nfc());
    let folded = caseless::default_case_fold_str(scratch);
    for c in folded.nfkc() {
        if is_kept(c) {
            out.push(c, span);
        } else {
            out.removed_pending = true;
        }
    }
    cluster.clear();
}

/// The matching form as a plain string (no spans).
pub fn normalize_str(text: &str) -> String {
    normalize(text).as_string()
}

/// 64-bit hashes of every character n-gram of `chars`, in order (empty when shorter than n).
pub fn ngram_hashes(chars: &[char], n: usize) -> Vec<u64> {
    if n == 0 || chars.len() < n {
        return Vec::new();
    }
    chars.windows(n).map(hash_chars).collect()
}

/// A fast, well-mixed hash of a short run of characters (not for adversarial keys).
pub fn hash_chars(chars: &[char]) -> u64 {
    let mut h: u64 = 0x9E37_79B9_7F4A_7C15 ^ chars.len() as u64;
    for &c in chars {
        h = (h ^ c as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h ^= h >> 29;
    }
    mix64(h)
}

/// splitmix64's finalizer.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_width_case_space_and_punctuation() {
        assert_eq!(normalize_str("Ｈｅｌｌｏ,  World!"), "helloworld");
        assert_eq!(normalize_str("ｶﾞｷﾞ　です。"), "ガギです");
        assert_eq!(normalize_str("Straße"), "strasse");
    }

    #[test]
    fn keeps_combining_marks_and_composes_decomposed_kana() {
        assert_eq!(normalize_str("か\u{3099}"), "が");
        assert_eq!(normalize_str("が"), "が");
        assert_eq!(normalize_str("e\u{301}"), "é");
    }

    #[test]
    fn separated_form_keeps_number_boundaries() {
        assert_eq!(normalize("What is 12 + 3?").separated(), "whatis12 3");
        assert_eq!(normalize("What is 1 + 23?").separated(), "whatis1 23");
        assert_eq!(normalize("  Hello,   World! ").separated(), "helloworld");
        assert_eq!(normalize("東京、日本。").separated(), "東京日本");
        assert_eq!(normalize("１２，３４５円").separated(), "12 345円");
    }

    #[test]
    fn spans_point_at_the_original_bytes() {
        let text = "Ａ、ｶﾞb";
        let n = normalize(text);
        assert_eq!(n.as_string(), "aガb");
        let (s, e) = n.source_span(1, 2);
        assert_eq!(&text[s as usize..e as usize], "ｶﾞ");
        let (s, e) = n.source_span(0, 3);
        assert_eq!(&text[s as usize..e as usize], text);
    }
}
