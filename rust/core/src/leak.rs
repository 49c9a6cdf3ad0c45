//! The benchmark leak filter: finds benchmark items (each turn a separate item) inside training
//! texts, on the matching form of both (see [`crate::text`]).
//!
//! A training text is checked in three ways:
//! - **exact**: its whole matching form equals an item's;
//! - **containment**: an item's whole matching form occurs inside it;
//! - **near**: an item occurs with a few edits. Candidates are items sharing at least
//!   `candidate_containment` of their distinct character n-grams with the text; each is verified
//!   by the edit distance between the item and its best-matching substring of the text
//!   (semi-global alignment), which must be at most [`LeakParams::max_edits`] of the item's
//!   length. Items shorter than [`LeakParams::min_near_len`] get no edits at all: a short
//!   question with one word changed is another question (「宿のことを英語でなんと言う？」 is not
//!   「店のことを英語でなんと言う？」), so it matches only exactly (whole or contained).
//!
//! Containment is found by the same alignment (distance 0), so the three kinds share one rule.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use crate::text::{hash_chars, normalize, Normalized};

/// Tunable thresholds (defaults chosen on the planting test; see BENCHMARKS.md).
#[derive(Debug, Clone, Copy)]
pub struct LeakParams {
    /// Characters per n-gram used to find candidates.
    pub ngram: usize,
    /// Share of an item's distinct n-grams a text must contain to be verified.
    pub candidate_containment: f64,
    /// Items shorter than this (matching-form characters) are too generic to identify a
    /// benchmark (「動物は？」) and never match.
    pub min_item_len: usize,
    /// Items shorter than this only match a whole text exactly.
    pub min_contained_len: usize,
    /// Items shorter than this match only without edits (exact or contained): one changed word
    /// in a short question makes another question.
    pub min_near_len: usize,
    /// Edits allowed per character beyond `edit_free_len` (length-aware near matching).
    pub edit_rate: f64,
    pub edit_free_len: usize,
}

impl Default for LeakParams {
    fn default() -> Self {
        Self {
            ngram: 5,
            candidate_containment: 0.3,
            min_item_len: 10,
            min_contained_len: 10,
            min_near_len: 30,
            edit_rate: 0.2,
            edit_free_len: 5,
        }
    }
}

impl LeakParams {
    /// Edits allowed between an item of `len` matching-form characters and a text span: none
    /// below `min_near_len`, then `edit_rate` per character beyond `edit_free_len`.
    pub fn max_edits(&self, len: usize) -> usize {
        if len < self.min_near_len {
            return 0;
        }
        let extra = len.saturating_sub(self.edit_free_len) as f64;
        (extra * self.edit_rate).floor() as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    Exact,
    Containment,
    Near,
}

impl MatchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchKind::Exact => "exact",
            MatchKind::Containment => "containment",
            MatchKind::Near => "near",
        }
    }
}

/// One benchmark item found in a text.
#[derive(Debug, Clone, PartialEq)]
pub struct LeakMatch {
    pub item: u32,
    pub kind: MatchKind,
    /// 1 - edits / item length.
    pub score: f64,
    /// Share of the item's distinct n-grams found in the text (1.0 for exact matches of items
    /// shorter than an n-gram).
    pub containment: f64,
    /// Byte span of the match in the original text.
    pub span: (u32, u32),
}

/// Keys that are already well-mixed hashes (n-gram hashes) or small ids, hashed cheaply.
#[derive(Default)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100_0000_01B3);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }
    fn write_u32(&mut self, x: u32) {
        self.0 = (x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;
pub type FastSet<K> = HashSet<K, BuildHasherDefault<FastHasher>>;

struct Item {
    chars: Vec<char>,
    distinct_ngrams: u32,
}

/// An index of benchmark items.
pub struct LeakIndex {
    params: LeakParams,
    items: Vec<Item>,
    postings: FastMap<u64, Vec<u32>>,
    whole: HashMap<String, Vec<u32>>,
}

#[derive(Clone)]
struct Hits {
    /// Distinct n-grams of the item found in the text.
    count: u32,
    /// Text positions of every n-gram hit, ascending.
    positions: Vec<u32>,
}

impl LeakIndex {
    pub fn new<S: AsRef<str>>(items: &[S], params: LeakParams) -> Self {
        assert!(params.ngram > 0, "ngram must be positive");
        let mut index = LeakIndex {
            params,
            items: Vec::with_capacity(items.len()),
            postings: FastMap::default(),
            whole: HashMap::new(),
        };
        for (id, text) in items.iter().enumerate() {
            let chars = normalize(text.as_ref()).chars;
            let id = id as u32;
            let mut distinct = 0;
            if chars.len() >= params.min_item_len.max(1) {
                index
                    .whole
                    .entry(chars.iter().collect())
                    .or_default()
                    .push(id);
            }
            if chars.len()
                >= params
                    .min_contained_len
                    .max(params.ngram)
                    .max(params.min_item_len)
            {
                let mut seen = FastSet::default();
                for gram in chars.windows(params.ngram) {
                    let h = hash_chars(gram);
                    if seen.insert(h) {
                        index.postings.entry(h).or_default().push(id);
                        distinct += 1;
                    }
                }
            }
            index.items.push(Item {
                chars,
                distinct_ngrams: distinct,
            });
        }
        index
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The matching-form length of item `id`.
    pub fn item_len(&self, id: usize) -> usize {
        self.items[id].chars.len()
    }

    /// Every item found in `text`, at most one match per item, ordered by item id.
    pub fn scan(&self, text: &str) -> Vec<LeakMatch> {
        let norm = normalize(text);
        let mut found: Vec<LeakMatch> = Vec::new();
        if norm.chars.is_empty() {
            return found;
        }
        let whole_span = (0, text.len() as u32);
        if let Some(ids) = self.whole.get(&norm.as_string()) {
            for &item in ids {
                found.push(LeakMatch {
                    item,
                    kind: MatchKind::Exact,
                    score: 1.0,
                    containment: 1.0,
                    span: whole_span,
                });
            }
        }
        let n = self.params.ngram;
        if norm.chars.len() < n {
            return found;
        }
        // Pass 1: distinct n-gram hits per item (most texts end here, with no candidate).
        let mut counts: FastMap<u32, u32> = FastMap::default();
        let mut seen: FastSet<u64> = FastSet::default();
        let mut hit_grams: Vec<(u32, u64)> = Vec::new();
        for (pos, gram) in norm.chars.windows(n).enumerate() {
            let h = hash_chars(gram);
            let Some(posting) = self.postings.get(&h) else {
                continue;
            };
            hit_grams.push((pos as u32, h));
            if seen.insert(h) {
                for &item in posting {
                    *counts.entry(item).or_insert(0) += 1;
                }
            }
        }
        let mut candidates: FastMap<u32, Hits> = counts
            .into_iter()
            .filter(|&(item, count)| {
                let it = &self.items[item as usize];
                count as f64 >= self.params.candidate_containment * it.distinct_ngrams as f64
                    && !found.iter().any(|m| m.item == item)
            })
            .map(|(item, count)| {
                let positions = Vec::new();
                (item, Hits { count, positions })
            })
            .collect();
        if candidates.is_empty() {
            return found;
        }
        // Pass 2: positions of the candidates' hits, to verify window by window.
        for &(pos, h) in &hit_grams {
            for item in &self.postings[&h] {
                if let Some(hits) = candidates.get_mut(item) {
                    hits.positions.push(pos);
                }
            }
        }
        let mut candidates: Vec<(u32, Hits)> = candidates.into_iter().collect();
        candidates.sort_unstable_by_key(|(item, _)| *item);
        for (item, h) in candidates {
            let it = &self.items[item as usize];
            let containment = h.count as f64 / it.distinct_ngrams as f64;
            if let Some(m) = self.verify(item, it, &norm, &h, containment) {
                found.push(m);
            }
        }
        found.sort_by_key(|m| m.item);
        found
    }

    fn verify(
        &self,
        item: u32,
        it: &Item,
        norm: &Normalized,
        hits: &Hits,
        containment: f64,
    ) -> Option<LeakMatch> {
        let m = it.chars.len();
        let max_edits = self.params.max_edits(m);
        // A match lies within an item's length (plus edits) of its n-gram hits. Hits are
        // grouped into windows split where they are further apart than that, so a long text
        // costs its windows, not its whole length, per candidate item.
        let reach = m + max_edits;
        let needed =
            (self.params.candidate_containment * it.distinct_ngrams as f64).ceil() as usize;
        let mut best: Option<(usize, usize, usize)> = None;
        let mut window_start = 0;
        for k in 1..=hits.positions.len() {
            let split = k == hits.positions.len()
                || (hits.positions[k] - hits.positions[k - 1]) as usize > reach;
            if !split {
                continue;
            }
            let window = &hits.positions[window_start..k];
            window_start = k;
            if window.len() < needed {
                continue; // too few hits here to reach the candidate bar
            }
            let lo = (window[0] as usize).saturating_sub(reach);
            let hi = (window[window.len() - 1] as usize + self.params.ngram + reach)
                .min(norm.chars.len());
            let bound = best.map_or(max_edits, |(e, _, _)| e);
            if let Some((e, s, t)) = best_substring(&it.chars, &norm.chars[lo..hi], bound) {
                if best.is_none_or(|(b, _, _)| e < b) {
                    best = Some((e, lo + s, lo + t));
                }
            }
        }
        let (edits, start, end) = best?;
        let kind = if edits > 0 {
            MatchKind::Near
        } else if start == 0 && end == norm.chars.len() {
            MatchKind::Exact
        } else {
            MatchKind::Containment
        };
        Some(LeakMatch {
            item,
            kind,
            score: 1.0 - edits as f64 / m as f64,
            containment,
            span: norm.source_span(start, end),
        })
    }
}

/// The fewest edits (insertions, deletions, substitutions) turning `pattern` into some substring
/// `text[start..end]`, when at most `max_edits`: `(edits, start, end)`, preferring the leftmost
/// end. Sellers' semi-global alignment ([`align`]).
pub fn best_substring(
    pattern: &[char],
    text: &[char],
    max_edits: usize,
) -> Option<(usize, usize, usize)> {
    align(pattern, text, max_edits, true)
}

/// The Levenshtein distance between `a` and `b` (insertions, deletions, substitutions), when at
/// most `max_edits` ([`align`] over the whole of both).
pub fn edit_distance(a: &[char], b: &[char], max_edits: usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > max_edits {
        return None;
    }
    align(a, b, max_edits, false).map(|(edits, _, _)| edits)
}

/// The edit alignment of `pattern` with `text[start..end]`, when it costs at most `max_edits`:
/// `(edits, start, end)`. `substring`: any start and end of `text` is free (semi-global, the
/// leftmost best end); else the whole text (global: Levenshtein). Abandoned as soon as no cell
/// of a row is within bound (row minima never decrease).
fn align(
    pattern: &[char],
    text: &[char],
    max_edits: usize,
    substring: bool,
) -> Option<(usize, usize, usize)> {
    let w = text.len();
    // (cost, start) per text position; row 0: a match may start anywhere for free (substring),
    // or skipping j characters of the text costs j.
    let mut prev: Vec<(u32, u32)> = (0..=w as u32)
        .map(|j| if substring { (0, j) } else { (j, 0) })
        .collect();
    let mut cur: Vec<(u32, u32)> = vec![(0, 0); w + 1];
    let bound = max_edits as u32;
    for (i, &pc) in pattern.iter().enumerate() {
        cur[0] = (i as u32 + 1, 0);
        let mut row_min = cur[0].0;
        for j in 1..=w {
            let diag = (prev[j - 1].0 + (pc != text[j - 1]) as u32, prev[j - 1].1);
            let up = (prev[j].0 + 1, prev[j].1);
            let left = (cur[j - 1].0 + 1, cur[j - 1].1);
            let mut best = diag;
            if up.0 < best.0 {
                best = up;
            }
            if left.0 < best.0 {
                best = left;
            }
            cur[j] = best;
            row_min = row_min.min(best.0);
        }
        if row_min > bound {
            return None;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    let (end, &(cost, start)) = if substring {
        prev.iter()
            .enumerate()
            .min_by_key(|(j, (cost, _))| (*cost, *j))?
    } else {
        (w, &prev[w])
    };
    (cost <= bound).then_some((cost as usize, start as usize, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn best_substring_finds_exact_and_edited_spans() {
        let t = chars("xxhelloyy");
        assert_eq!(best_substring(&chars("hello"), &t, 0), Some((0, 2, 7)));
        assert_eq!(best_substring(&chars("hallo"), &t, 1), Some((1, 2, 7)));
        assert_eq!(best_substring(&chars("hallo"), &t, 0), None);
        assert_eq!(best_substring(&chars("helo"), &t, 1).map(|r| r.0), Some(1));
    }

    #[test]
    fn edit_distance_is_levenshtein_within_a_bound() {
        let d = |a: &str, b: &str, max| edit_distance(&chars(a), &chars(b), max);
        assert_eq!(d("kitten", "sitting", 3), Some(3));
        assert_eq!(d("kitten", "sitting", 2), None);
        assert_eq!(d("融点", "沸点", 1), Some(1));
        assert_eq!(d("", "abc", 3), Some(3));
        assert_eq!(d("abc", "abc", 0), Some(0));
        assert_eq!(d("xxhelloyy", "hello", 3), None); // the whole text, not a substring
    }

    #[test]
    fn finds_the_three_kinds() {
        let items = [
            "What is the capital of France? Explain the history of the city.",
            "ストレスと上手に付き合うには、どのような方法がありますか？",
        ];
        let index = LeakIndex::new(&items, LeakParams::default());
        let exact = index.scan("what is the capital of FRANCE?  explain the history of the city");
        assert_eq!(exact[0].kind, MatchKind::Exact);
        let inside = "前置き。ストレスと上手に付き合うには、どのような方法がありますか？ 後書き";
        let m = index.scan(inside);
        assert_eq!((m[0].item, m[0].kind), (1, MatchKind::Containment));
        let (s, e) = m[0].span;
        assert_eq!(
            &inside[s as usize..e as usize],
            items[1].trim_end_matches('？')
        );
        let near =
            index.scan("Tell me: what's the capital of France? Explain the history of this city!");
        assert_eq!((near[0].item, near[0].kind), (0, MatchKind::Near));
    }

    #[test]
    fn a_shared_polite_ending_is_not_a_match() {
        let items = ["時間管理能力を向上させるにはどうしたらいいですか？"];
        let index = LeakIndex::new(&items, LeakParams::default());
        assert!(index
            .scan("肩こりを治すにはどうしたらいいですか？")
            .is_empty());
        assert!(index
            .scan("英語の発音を向上させるにはどうしたらいいですか？")
            .is_empty());
    }

    #[test]
    fn a_short_item_matches_only_without_edits() {
        let items = ["宿のことを英語でなんと言う？"];
        let index = LeakIndex::new(&items, LeakParams::default());
        assert!(index.scan("店のことを英語でなんと言う？").is_empty());
        assert!(index.scan("宿のことを英語でなんという").is_empty());
        assert_eq!(
            index.scan("宿のことを英語でなんと言う")[0].kind,
            MatchKind::Exact
        );
        let inside = index.scan("質問：宿のことを英語でなんと言う？答えだけ");
        assert_eq!(inside[0].kind, MatchKind::Containment);
    }
}
