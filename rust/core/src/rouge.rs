//! ROUGE-L and the novelty filter of Self-Instruct: a text is novel when its ROUGE-L F1 against
//! every text already kept is at most a threshold (Self-Instruct rejects above 0.7).
//!
//! **Score.** ROUGE-L F1 exactly as rouge-score's `rougeL` fmeasure computes it: with `l` the
//! length of the longest common subsequence of the token lists, `p = l / |b|`, `r = l / |a|`,
//! `F1 = 2·p·r / (p + r)` in that floating-point order (0 when either list is empty or `l` is
//! 0), so scores and threshold decisions equal rouge-score's bit for bit.
//!
//! **Tokens** ([`Unit`]):
//! - `Char`: every character that is not whitespace (Unicode `White_Space`) is a token;
//!   the unit for Japanese.
//! - `Word`: rouge-score's default tokenizer without stemmer: lowercase (full Unicode
//!   lowercasing, as Python's `str.lower`), then the maximal runs of `[a-z0-9]`. Everything else
//!   is a separator, so it **drops all non-ASCII text**: two Japanese texts score 0 — the reason
//!   Japanese uses `Char`.
//! - `Auto`: per pair, `Char` when either text holds a Hiragana, Katakana or CJK ideograph
//!   ([`is_japanese_char`]), else `Word`.
//!
//! **Speed.** Tokens are interned to `u32` ids once per text. The LCS is the bit-parallel
//! algorithm of Allison–Dix / Hyyrö over 64-bit words (`V' = (V + (V & M)) | (V & !M)`, LCS =
//! zero bits of `V`), multiword with carries when the query exceeds 64 tokens: `O(|b|·⌈|a|/64⌉)`.
//! Before an LCS, two exact upper bounds skip a pool text: the length bound (LCS ≤ min(|a|,|b|))
//! and a count-sketch bound (LCS ≤ multiset intersection ≤ Σ over 32 hash buckets of the smaller
//! bucket count). A pool text is skipped only when its bound is below the best score found so
//! far (or 0), so the best score and its index are always exact, for novel texts too. The F1
//! formula is increasing in `l` for any realistic length (one more common token raises F1 by a
//! relative `1/l`, far above the few ulps of rounding), so a bound on `l` bounds the score.
//! The pool is scanned in parallel (rayon) with the best score shared through an atomic.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

/// How texts are split into tokens (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Char,
    Word,
    Auto,
}

impl Unit {
    pub fn parse(name: &str) -> Option<Unit> {
        match name {
            "char" => Some(Unit::Char),
            "word" => Some(Unit::Word),
            "auto" => Some(Unit::Auto),
            _ => None,
        }
    }
}

/// Hiragana, Katakana (with phonetic extensions and half-width forms) or a CJK ideograph
/// (unified, extension A, compatibility, and the supplementary/tertiary ideographic planes).
pub fn is_japanese_char(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x309F          // Hiragana
        | 0x30A0..=0x30FF        // Katakana
        | 0x31F0..=0x31FF        // Katakana phonetic extensions
        | 0xFF66..=0xFF9F        // half-width Katakana
        | 0x3400..=0x4DBF        // CJK extension A
        | 0x4E00..=0x9FFF        // CJK unified ideographs
        | 0xF900..=0xFAFF        // CJK compatibility ideographs
        | 0x20000..=0x3FFFF) // supplementary and tertiary ideographic planes
}

pub fn is_japanese(text: &str) -> bool {
    text.chars().any(is_japanese_char)
}

/// The unit a pair is compared in: `Auto` resolves to `Char` when either text is Japanese.
pub fn pair_unit(a: &str, b: &str, unit: Unit) -> Unit {
    match unit {
        Unit::Auto if is_japanese(a) || is_japanese(b) => Unit::Char,
        Unit::Auto => Unit::Word,
        other => other,
    }
}

/// Every non-whitespace character, as a slice of `text`.
fn char_tokens(text: &str) -> impl Iterator<Item = &str> {
    text.char_indices()
        .filter(|(_, c)| !c.is_whitespace())
        .map(|(i, c)| &text[i..i + c.len_utf8()])
}

/// rouge-score's default tokens (no stemmer): the runs of `[a-z0-9]` after lowercasing.
fn word_tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for lower in text.chars().flat_map(char::to_lowercase) {
        if lower.is_ascii_lowercase() || lower.is_ascii_digit() {
            word.push(lower);
        } else if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// The tokens of one text; `Auto` decides from this text alone.
pub fn tokens(text: &str, unit: Unit) -> Vec<String> {
    match pair_unit(text, "", unit) {
        Unit::Char => char_tokens(text).map(str::to_owned).collect(),
        _ => word_tokens(text),
    }
}

/// rouge-score's F1 from the LCS length `l` and the token counts (symmetric in `a`, `b`).
pub fn f1(l: usize, a: usize, b: usize) -> f64 {
    if l == 0 || a == 0 || b == 0 {
        return 0.0;
    }
    let (l, a, b) = (l as f64, a as f64, b as f64);
    let precision = l / b;
    let recall = l / a;
    2.0 * precision * recall / (precision + recall)
}

/// ROUGE-L F1 of two texts.
pub fn rouge_l(a: &str, b: &str, unit: Unit) -> f64 {
    let unit = pair_unit(a, b, unit);
    let mut vocab = Vocab::default();
    let a = vocab.intern_all(&tokens(a, unit));
    let b = vocab.intern_all(&tokens(b, unit));
    let mut pattern = Pattern::default();
    pattern.build(&a, vocab.len());
    let l = pattern.lcs(&b);
    pattern.clear(&a);
    f1(l, a.len(), b.len())
}

/// Token strings to ids.
#[derive(Default)]
struct Vocab {
    ids: HashMap<String, u32>,
}

/// The id of a token the vocabulary has never seen (matches nothing in the pool).
const UNSEEN: u32 = u32::MAX;

impl Vocab {
    fn len(&self) -> usize {
        self.ids.len()
    }

    fn intern(&mut self, token: &str) -> u32 {
        if let Some(&id) = self.ids.get(token) {
            return id;
        }
        let id = u32::try_from(self.ids.len()).expect("fewer than 2^32 distinct tokens");
        self.ids.insert(token.to_owned(), id);
        id
    }

    fn intern_all<S: AsRef<str>>(&mut self, tokens: &[S]) -> Vec<u32> {
        tokens.iter().map(|t| self.intern(t.as_ref())).collect()
    }

    fn lookup_all<S: AsRef<str>>(&self, tokens: &[S]) -> Vec<u32> {
        tokens
            .iter()
            .map(|t| self.ids.get(t.as_ref()).copied().unwrap_or(UNSEEN))
            .collect()
    }
}

const BUCKETS: usize = 32;

/// Token counts per hash bucket, saturating at 255. For two texts, Σ_bucket min(counts) bounds
/// the size of their multiset intersection (merging tokens into a bucket only raises the min),
/// unless both saturate in one bucket ([`Sketch::bounds`]).
#[derive(Clone, Copy)]
struct Sketch([u8; BUCKETS]);

impl Sketch {
    fn new(ids: &[u32]) -> Self {
        let mut counts = [0u8; BUCKETS];
        for &id in ids {
            let bucket = (id.wrapping_mul(0x9E37_79B1) >> 27) as usize;
            counts[bucket] = counts[bucket].saturating_add(1);
        }
        Sketch(counts)
    }

    /// Whether [`Sketch::intersection`] with any other sketch is a valid bound: no saturated
    /// bucket on this side (the query's).
    fn bounds(&self) -> bool {
        self.0.iter().all(|&c| c < u8::MAX)
    }

    fn intersection(&self, other: &Sketch) -> usize {
        self.0
            .iter()
            .zip(other.0.iter())
            .map(|(&a, &b)| a.min(b) as u32)
            .sum::<u32>() as usize
    }
}

/// The bit masks of a query (the LCS pattern): for each token id, the positions it occupies,
/// in `words` 64-bit words. Indexed through `local` (vocab id → row) so that clearing after a
/// query touches only the query's own tokens.
#[derive(Default)]
struct Pattern {
    words: usize,
    /// Row of each vocab id (0 = not in the query, whose row is all zeros).
    local: Vec<u32>,
    /// `rows × words` masks; row 0 is zeros.
    masks: Vec<u64>,
    /// For a query of one word: the mask of each vocab id directly (one load per token).
    direct: Vec<u64>,
}

impl Pattern {
    fn build(&mut self, ids: &[u32], vocab_len: usize) {
        if self.local.len() < vocab_len {
            self.local.resize(vocab_len, 0);
            self.direct.resize(vocab_len, 0);
        }
        self.words = ids.len().div_ceil(64).max(1);
        if self.words == 1 {
            for (position, &id) in ids.iter().enumerate() {
                if id != UNSEEN {
                    self.direct[id as usize] |= 1 << position;
                }
            }
            return;
        }
        self.masks.clear();
        self.masks.resize(self.words, 0);
        for (position, &id) in ids.iter().enumerate() {
            if id == UNSEEN {
                continue;
            }
            let slot = &mut self.local[id as usize];
            if *slot == 0 {
                *slot = (self.masks.len() / self.words) as u32;
                self.masks.resize(self.masks.len() + self.words, 0);
            }
            let row = *slot as usize * self.words;
            self.masks[row + position / 64] |= 1 << (position % 64);
        }
    }

    fn clear(&mut self, ids: &[u32]) {
        for &id in ids {
            if id != UNSEEN {
                self.local[id as usize] = 0;
                self.direct[id as usize] = 0;
            }
        }
    }

    fn row(&self, id: u32) -> usize {
        self.local.get(id as usize).map_or(0, |&r| r as usize) * self.words
    }

    /// Length of the LCS of the query and `text` (ids of the same vocabulary).
    fn lcs(&self, text: &[u32]) -> usize {
        if self.words == 1 {
            let mut v = u64::MAX;
            for &id in text {
                let u = v & self.direct[id as usize];
                v = v.wrapping_add(u) | (v - u);
            }
            return v.count_zeros() as usize;
        }
        let mut v = vec![u64::MAX; self.words];
        for &id in text {
            let masks = &self.masks[self.row(id)..][..self.words];
            let mut carry = 0u64;
            for (vk, &m) in v.iter_mut().zip(masks) {
                let u = *vk & m;
                let (sum, c1) = vk.overflowing_add(u);
                let (sum, c2) = sum.overflowing_add(carry);
                carry = (c1 | c2) as u64;
                *vk = sum | (*vk - u);
            }
        }
        v.iter().map(|w| w.count_zeros() as usize).sum()
    }
}

/// The texts of the pool in one unit: ids back to back, with per-text starts and sketches.
#[derive(Default)]
struct Store {
    vocab: Vocab,
    ids: Vec<u32>,
    starts: Vec<usize>,
    sketches: Vec<Sketch>,
    pattern: Pattern,
}

impl Store {
    fn push(&mut self, tokens: &[String]) {
        let ids = self.vocab.intern_all(tokens);
        if self.starts.is_empty() {
            self.starts.push(0);
        }
        self.sketches.push(Sketch::new(&ids));
        self.ids.extend_from_slice(&ids);
        self.starts.push(self.ids.len());
    }

    fn text(&self, i: usize) -> &[u32] {
        &self.ids[self.starts[i]..self.starts[i + 1]]
    }
}

/// One query in one unit: its ids (unseen tokens as [`UNSEEN`]) and sketch.
struct Query {
    ids: Vec<u32>,
    sketch: Sketch,
}

/// The outcome of a check: `novel` when `score <= threshold`; `score` the best ROUGE-L F1
/// against the pool and `index` the first pool text with that score (`None` when the pool is
/// empty or no pool text shares a token, score 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    pub novel: bool,
    pub score: f64,
    pub index: Option<usize>,
}

/// A growing pool of texts that new texts are checked against (see the module docs).
pub struct NoveltyFilter {
    threshold: f64,
    unit: Unit,
    /// Character tokens of every pool text (units `Char` and `Auto`).
    chars: Store,
    /// Word tokens of every pool text (units `Word` and `Auto`).
    words: Store,
    /// Per pool text: holds Japanese (for `Auto`).
    japanese: Vec<bool>,
}

/// Pool texts per parallel task.
const CHUNK: usize = 2048;

impl NoveltyFilter {
    pub fn new(threshold: f64, unit: Unit) -> Self {
        Self {
            threshold,
            unit,
            chars: Store::default(),
            words: Store::default(),
            japanese: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.japanese.len()
    }

    pub fn is_empty(&self) -> bool {
        self.japanese.is_empty()
    }

    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    fn uses_chars(&self) -> bool {
        self.unit != Unit::Word
    }

    fn uses_words(&self) -> bool {
        self.unit != Unit::Char
    }

    /// Put a text in the pool unconditionally.
    pub fn add(&mut self, text: &str) {
        if self.uses_chars() {
            self.chars.push(&tokens(text, Unit::Char));
        }
        if self.uses_words() {
            self.words.push(&tokens(text, Unit::Word));
        }
        self.japanese.push(is_japanese(text));
    }

    /// Check a text against the pool (does not add it).
    pub fn check(&mut self, text: &str) -> Verdict {
        let japanese = is_japanese(text);
        let query = |store: &Store, unit: Unit| {
            let ids = store.vocab.lookup_all(&tokens(text, unit));
            let sketch = Sketch::new(&ids);
            Query { ids, sketch }
        };
        // Which stores the query meets: with `Auto`, a Japanese query compares in characters
        // with everything; an English one in characters with Japanese pool texts only.
        let char_query = match self.unit {
            Unit::Word => None,
            _ => Some(query(&self.chars, Unit::Char)),
        };
        let word_query = match self.unit {
            Unit::Char => None,
            Unit::Word => Some(query(&self.words, Unit::Word)),
            Unit::Auto => (!japanese).then(|| query(&self.words, Unit::Word)),
        };
        if let Some(q) = &char_query {
            self.chars.pattern.build(&q.ids, self.chars.vocab.len());
        }
        if let Some(q) = &word_query {
            self.words.pattern.build(&q.ids, self.words.vocab.len());
        }
        let (score, index) = self.scan(char_query.as_ref(), word_query.as_ref());
        if let Some(q) = &char_query {
            self.chars.pattern.clear(&q.ids);
        }
        if let Some(q) = &word_query {
            self.words.pattern.clear(&q.ids);
        }
        Verdict {
            novel: score <= self.threshold,
            score,
            index,
        }
    }

    /// Check a text and add it when novel.
    pub fn add_if_novel(&mut self, text: &str) -> Verdict {
        let verdict = self.check(text);
        if verdict.novel {
            self.add(text);
        }
        verdict
    }

    /// [`NoveltyFilter::add_if_novel`] over texts in order.
    pub fn filter<S: AsRef<str>>(&mut self, texts: &[S]) -> Vec<Verdict> {
        texts
            .iter()
            .map(|t| self.add_if_novel(t.as_ref()))
            .collect()
    }

    /// The best score over the pool and the first index reaching it (exact; see module docs).
    fn scan(&self, chars: Option<&Query>, words: Option<&Query>) -> (f64, Option<usize>) {
        let best = AtomicU64::new(0f64.to_bits());
        let n = self.len();
        let chunk_best = |chunk: usize| {
            let mut found: (f64, Option<usize>) = (0.0, None);
            for i in chunk * CHUNK..((chunk + 1) * CHUNK).min(n) {
                let (store, query) = match (chars, words) {
                    (Some(_), Some(w)) if !self.japanese[i] => (&self.words, w),
                    (Some(c), _) => (&self.chars, c),
                    (None, Some(w)) => (&self.words, w),
                    (None, None) => unreachable!("a filter compares in some unit"),
                };
                let Some(score) = self.score(store, query, i, &best) else {
                    continue;
                };
                if score > found.0 {
                    found = (score, Some(i));
                    best.fetch_max(score.to_bits(), Ordering::Relaxed);
                }
            }
            found
        };
        let chunks = n.div_ceil(CHUNK);
        let pick = |a: (f64, Option<usize>), b: (f64, Option<usize>)| {
            if b.0 > a.0 || (b.0 == a.0 && b.1.is_some() && (a.1.is_none() || b.1 < a.1)) {
                b
            } else {
                a
            }
        };
        if chunks <= 1 {
            return (0..chunks).map(chunk_best).fold((0.0, None), pick);
        }
        (0..chunks)
            .into_par_iter()
            .map(chunk_best)
            .reduce(|| (0.0, None), pick)
    }

    /// The score of pool text `i`, or `None` when a bound shows it is 0 or below `best`
    /// (non-negative f64 bits order like the numbers, so the atomic holds the best as bits).
    fn score(&self, store: &Store, query: &Query, i: usize, best: &AtomicU64) -> Option<f64> {
        let text = store.text(i);
        let (a, b) = (query.ids.len(), text.len());
        let floor = f64::from_bits(best.load(Ordering::Relaxed));
        let skip = |bound: usize| bound == 0 || f1(bound, a, b) < floor;
        if skip(a.min(b)) {
            return None;
        }
        if query.sketch.bounds() && skip(query.sketch.intersection(&store.sketches[i])) {
            return None;
        }
        let score = f1(store.pattern.lcs(text), a, b);
        (score > 0.0).then_some(score)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook dynamic programme.
    fn lcs_table(a: &[u32], b: &[u32]) -> usize {
        let mut row = vec![0usize; b.len() + 1];
        for &x in a {
            let mut diagonal = 0;
            for (j, &y) in b.iter().enumerate() {
                let up = row[j + 1];
                row[j + 1] = if x == y { diagonal + 1 } else { up.max(row[j]) };
                diagonal = up;
            }
        }
        row[b.len()]
    }

    /// A small deterministic generator (xorshift) for random token lists.
    fn random_ids(state: &mut u64, len: usize, alphabet: u32) -> Vec<u32> {
        (0..len)
            .map(|_| {
                *state ^= *state << 13;
                *state ^= *state >> 7;
                *state ^= *state << 17;
                (*state % alphabet as u64) as u32
            })
            .collect()
    }

    #[test]
    fn bit_parallel_lcs_equals_the_table_single_and_multiword() {
        let mut state = 0x2545_F491_4F6C_DD1D;
        for &(la, lb, alphabet) in &[
            (5, 7, 3),
            (64, 64, 4),
            (65, 30, 5),
            (200, 150, 6),
            (130, 1, 2),
        ] {
            for _ in 0..20 {
                let a = random_ids(&mut state, la, alphabet);
                let b = random_ids(&mut state, lb, alphabet);
                let mut pattern = Pattern::default();
                pattern.build(&a, alphabet as usize);
                assert_eq!(pattern.lcs(&b), lcs_table(&a, &b), "{a:?} {b:?}");
                pattern.clear(&a);
                assert!(pattern.local.iter().all(|&r| r == 0));
                assert!(pattern.direct.iter().all(|&m| m == 0));
            }
        }
    }

    #[test]
    fn tokens_follow_the_units() {
        assert_eq!(tokens("日本 語", Unit::Char), ["日", "本", "語"]);
        assert_eq!(
            tokens("Don't stop-2 İx", Unit::Word),
            ["don", "t", "stop", "2", "i", "x"]
        );
        assert_eq!(tokens("日本語 is fun", Unit::Word), ["is", "fun"]);
        assert_eq!(tokens("日本語 is fun", Unit::Auto).len(), 8);
        assert_eq!(pair_unit("abc", "かな", Unit::Auto), Unit::Char);
        assert_eq!(pair_unit("abc", "def", Unit::Auto), Unit::Word);
    }

    #[test]
    fn exact_best_and_first_index_with_pruning() {
        let mut filter = NoveltyFilter::new(0.7, Unit::Auto);
        for text in [
            "日本の首都はどこですか",
            "猫について詩を書いて",
            "日本の首都はどこですか",
        ] {
            filter.add(text);
        }
        let v = filter.check("日本の首都はどこ");
        assert_eq!(v.index, Some(0));
        assert_eq!(v.score, f1(8, 8, 11));
        assert!(!v.novel);
        let v = filter.check("hello world");
        assert_eq!((v.novel, v.score, v.index), (true, 0.0, None));
    }
}
