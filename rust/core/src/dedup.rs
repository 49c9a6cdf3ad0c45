//! Exact and near-duplicate detection over a stream of texts, with bounded memory.
//!
//! Each text is reduced to its matching form ([`crate::text`]). Exact duplicates share the
//! 128-bit hash of that form. Near duplicates: MinHash over the distinct character n-grams,
//! LSH with `bands` bands of `rows` rows proposes candidate pairs, and each distinct candidate
//! pair is verified once by the true Jaccard similarity of the two n-gram sets. Since nothing
//! joins unverified, the banding leans to recall ([`recall_bands`]: at least 99.5 % of the pairs
//! exactly at the threshold share a band). Verified pairs and exact duplicates are joined by
//! union-find; each cluster's root is its first text.
//!
//! A text may carry a question (the question of a question + context record) and an answer: a
//! text with a question is a near duplicate only of another text with one whose question is the
//! same ([`QuestionMatch`]), so different questions on one passage stay apart, also through a
//! chain via a text without a question. The questions are the same when the Jaccard of their
//! n-gram sets is at or above the threshold, or when their edit similarity (1 - Levenshtein
//! distance / longer length) is and so is the Jaccard of their answers: a typo leaves the answer
//! as it was, while a question one character away on the same passage (melting / boiling point)
//! has another answer.
//!
//! Per text, memory holds only the exact hash and the band keys; the n-gram sets (64-bit hashes,
//! sorted), and the question's characters and the answer's text where there is a question, are
//! appended to a spill file and read back (positioned reads) for verification, so inputs far
//! larger than memory work. An answer is normalized only when a pair's questions are compared by
//! edits (few pairs), not for every text.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_128;

use crate::error::{Error, Result};
use crate::fileio::read_exact_at;
use crate::leak::{edit_distance, FastSet};
use crate::text::{hash_chars, mix64, normalize};

#[derive(Debug, Clone, Copy)]
pub struct DedupParams {
    /// false: exact duplicates only.
    pub near: bool,
    pub ngram: usize,
    pub bands: usize,
    pub rows: usize,
    pub threshold: f64,
    pub seed: u64,
}

/// What one text contributes, computed in parallel.
struct Sketch {
    exact: u128,
    bands: Vec<u64>,
    shingles: Vec<u64>,
    /// The question's matching form (chars as u64) and the answer's text ([`pack_text`]);
    /// empty: none.
    question: Vec<u64>,
    answer: Vec<u64>,
}

/// Members of an LSH bucket paired with each of this many preceding members (every pair in a
/// bucket of up to `PAIR_WINDOW + 1`), plus the bucket's first member: bounded work per bucket.
const PAIR_WINDOW: usize = 64;
/// Candidate pairs verified per round (between rounds, pairs already joined are skipped).
const VERIFY_CHUNK: usize = 1 << 16;

/// One u64 for a pair of text indices (a < b).
fn pair_key(a: u32, b: u32) -> u64 {
    ((a as u64) << 32) | b as u64
}

pub struct Deduper {
    params: DedupParams,
    /// (a, b) of each hash function h(x) = a·x + b (mod 2^64), a odd.
    perms: Vec<(u64, u64)>,
    exact: Vec<u128>,
    /// `bands` keys per text; u64::MAX marks a text that takes no part in near dedup.
    band_keys: Vec<u64>,
    spill: BufWriter<File>,
    /// The spill file, already unlinked: nothing is left behind even after a hard kill.
    spill_reader: File,
    /// Text i's spill record starts at `spill_offsets[i]` (in u64s): its n-gram set
    /// (`parts[i].0` u64s), its question's chars (`parts[i].1`), then its answer's text
    /// ([`pack_text`]) up to `spill_offsets[i + 1]`.
    spill_offsets: Vec<u64>,
    parts: Vec<(u32, u32)>,
    /// Set by `finish`: text i has the same key as an earlier text.
    exact_copy: Vec<bool>,
    spill_path: std::path::PathBuf,
}

/// The exact key of a text whose matching form is empty (only emoji, punctuation, spaces): such
/// texts are never joined to each other.
const NO_KEY: u128 = u128::MAX;

/// Outcome of [`Deduper::finish`].
pub struct Clusters {
    /// Per text, the index of its cluster's first text (itself when unique).
    pub root: Vec<u32>,
    /// Per text, the lowest Jaccard similarity among the verified pairs it took part in (1.0
    /// when it joined only by exact duplicates, or not at all).
    pub similarity: Vec<f32>,
    /// Per text, the lowest question Jaccard among the verified pairs where both had a question
    /// (NaN when none).
    pub question_jaccard: Vec<f32>,
    /// Per text, the lowest question similarity that made a verified pair's questions the same
    /// (the Jaccard, or the edit similarity when the answers decided; NaN when none).
    pub question_similarity: Vec<f32>,
    /// Per text: some verified pair of it had its questions the same by edits and answers.
    pub by_answer: Vec<bool>,
    pub exact_pairs: u64,
    /// Distinct candidate pairs proposed by the LSH and verified (not already joined).
    pub candidate_pairs: u64,
    pub verified_pairs: u64,
    /// Candidate pairs at or above the threshold whose questions were not (or only one text
    /// had a question).
    pub question_rejected_pairs: u64,
    /// Verified pairs whose questions were the same by edit similarity and answers (not by
    /// Jaccard).
    pub question_edit_pairs: u64,
}

impl Deduper {
    /// `spill_path`: a new file for the n-gram sets, unlinked as soon as it is open.
    pub fn new(params: DedupParams, spill_path: &Path) -> Result<Self> {
        if params.near && (params.ngram == 0 || params.bands == 0 || params.rows == 0) {
            return Err(Error::InvalidArgument(
                "ngram, bands and rows must be positive".into(),
            ));
        }
        let mut state = params.seed ^ 0x5DEE_CE66_D1CE_4E5B;
        let mut next = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            mix64(state)
        };
        let perms = (0..params.bands * params.rows)
            .map(|_| (next() | 1, next()))
            .collect();
        let io = |e| Error::io(spill_path, e);
        let spill_reader = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(spill_path)
            .map_err(io)?;
        std::fs::remove_file(spill_path).map_err(io)?;
        let spill = spill_reader.try_clone().map_err(io)?;
        Ok(Self {
            params,
            perms,
            exact: Vec::new(),
            band_keys: Vec::new(),
            spill: BufWriter::with_capacity(1 << 20, spill),
            spill_reader,
            spill_offsets: vec![0],
            parts: Vec::new(),
            exact_copy: Vec::new(),
            spill_path: spill_path.to_path_buf(),
        })
    }

    pub fn len(&self) -> usize {
        self.exact.len()
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty()
    }

    /// Add a batch of texts (in parallel). `near[i] == false` keeps text i out of near dedup
    /// (exact only), e.g. template-generated rows that are near-identical by design.
    /// `questions[i]` and `answers[i]`: the question of text i and its answer, when it has them
    /// (see the module docs; an answer counts only with a question); an empty slice: no text
    /// has one.
    pub fn add(
        &mut self,
        texts: &[&str],
        near: &[bool],
        questions: &[Option<&str>],
        answers: &[Option<&str>],
    ) -> Result<()> {
        let fits = |v: usize| v == 0 || v == texts.len();
        if near.len() != texts.len() || !fits(questions.len()) || !fits(answers.len()) {
            return Err(Error::InvalidArgument(
                "texts, near, questions and answers differ in length".into(),
            ));
        }
        if self.exact.len() + texts.len() > u32::MAX as usize {
            return Err(Error::InvalidArgument(format!(
                "dedup handles at most {} records per run",
                u32::MAX
            )));
        }
        let sketches: Vec<Sketch> = (0..texts.len())
            .into_par_iter()
            .map(|i| {
                let question = questions.get(i).copied().flatten();
                let answer = answers.get(i).copied().flatten();
                self.sketch(texts[i], near[i] && self.params.near, question, answer)
            })
            .collect();
        let io = |e| Error::io(&self.spill_path, e);
        let mut bytes = Vec::new();
        for s in sketches {
            self.exact.push(s.exact);
            self.band_keys.extend_from_slice(&s.bands);
            let start = *self.spill_offsets.last().unwrap();
            self.parts
                .push((s.shingles.len() as u32, s.question.len() as u32));
            bytes.clear();
            for h in s.shingles.iter().chain(&s.question).chain(&s.answer) {
                bytes.extend_from_slice(&h.to_le_bytes());
            }
            self.spill.write_all(&bytes).map_err(io)?;
            let len = s.shingles.len() + s.question.len() + s.answer.len();
            self.spill_offsets.push(start + len as u64);
        }
        Ok(())
    }

    /// The sorted, distinct n-gram hashes of a matching form (a form shorter than n is its own
    /// single n-gram).
    fn ngram_set(&self, chars: &[char]) -> Vec<u64> {
        let n = self.params.ngram.min(chars.len());
        let mut set: Vec<u64> = chars.windows(n).map(hash_chars).collect();
        set.sort_unstable();
        set.dedup();
        set
    }

    fn sketch(
        &self,
        text: &str,
        near: bool,
        question: Option<&str>,
        answer: Option<&str>,
    ) -> Sketch {
        let norm = normalize(text);
        let form = norm.separated();
        let exact = if norm.chars.is_empty() {
            NO_KEY
        } else {
            xxh3_128(form.as_bytes()).min(NO_KEY - 1)
        };
        // Shingles come from the same form, so "12 + 3" and "1 + 23" stay apart.
        let chars: Vec<char> = form.chars().collect();
        let bands_n = if self.params.near {
            self.params.bands
        } else {
            0
        };
        if !near || chars.is_empty() {
            return Sketch {
                exact,
                bands: vec![u64::MAX; bands_n],
                shingles: Vec::new(),
                question: Vec::new(),
                answer: Vec::new(),
            };
        }
        let set = self.ngram_set(&chars);
        let mins = min_hashes(&set, &self.perms);
        let bands = mins
            .chunks(self.params.rows)
            .enumerate()
            .map(|(band, rows)| {
                let mut h = band as u64;
                for &r in rows {
                    h = mix64(h ^ r);
                }
                h.min(u64::MAX - 1)
            })
            .collect();
        let question: Vec<u64> = question.map_or_else(Vec::new, |q| {
            normalize(q).separated().chars().map(u64::from).collect()
        });
        let answer = match answer {
            Some(answer) if !question.is_empty() => pack_text(answer),
            _ => Vec::new(),
        };
        Sketch {
            exact,
            bands,
            shingles: set,
            question,
            answer,
        }
    }

    /// Cluster everything added. `progress(done, total)` is called per LSH band.
    pub fn finish(mut self, progress: &mut dyn FnMut(usize, usize)) -> Result<Clusters> {
        self.spill
            .flush()
            .map_err(|e| Error::io(&self.spill_path, e))?;
        let n = self.exact.len();
        self.exact_copy = vec![false; n];
        let mut uf = UnionFind::new(n);
        let mut similarity = vec![1.0f32; n];
        let mut exact_pairs = 0;
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.par_sort_unstable_by_key(|&i| (self.exact[i as usize], i));
        for w in order.windows(2) {
            let key = self.exact[w[0] as usize];
            if key != NO_KEY && key == self.exact[w[1] as usize] {
                uf.union(w[0], w[1]);
                self.exact_copy[w[1] as usize] = true;
                exact_pairs += 1;
            }
        }
        let mut question_jaccard = vec![f32::NAN; n];
        let mut question_similarity = vec![f32::NAN; n];
        let mut by_answer = vec![false; n];
        let (mut candidate_pairs, mut verified_pairs, mut question_rejected_pairs) = (0, 0, 0);
        let mut question_edit_pairs = 0;
        if self.params.near && n > 1 {
            // Verified pairs below the threshold (or kept apart by their questions), so a pair
            // that shares several bands is verified once.
            let mut rejected: FastSet<u64> = FastSet::default();
            let bands = self.params.bands;
            for band in 0..bands {
                let pairs = self.band_pairs(band, &mut uf, &rejected);
                // Sets are read back with positioned reads, not a memory map: only candidate
                // pairs are read, and the kernel's page cache (not this process's RSS) holds
                // the file.
                for chunk in pairs.chunks(VERIFY_CHUNK) {
                    let todo: Vec<(u32, u32)> = chunk
                        .iter()
                        .copied()
                        .filter(|&(a, b)| uf.find(a) != uf.find(b))
                        .collect();
                    candidate_pairs += todo.len() as u64;
                    let verdicts = todo
                        .par_iter()
                        .map(|&(a, b)| self.verify(a, b))
                        .collect::<std::io::Result<Vec<Verdict>>>()
                        .map_err(|e| Error::io(&self.spill_path, e))?;
                    for (&(a, b), v) in todo.iter().zip(verdicts) {
                        let (key, question) = match v {
                            Verdict::Below => {
                                rejected.insert(pair_key(a, b));
                                continue;
                            }
                            Verdict::OtherQuestion => {
                                rejected.insert(pair_key(a, b));
                                question_rejected_pairs += 1;
                                continue;
                            }
                            Verdict::Near { key, question } => (key, question),
                        };
                        if uf.find(a) != uf.find(b) {
                            uf.union(a, b);
                            verified_pairs += 1;
                            question_edit_pairs += question.is_some_and(|q| q.by_answer) as u64;
                        }
                        for x in [a as usize, b as usize] {
                            similarity[x] = similarity[x].min(key as f32);
                            if let Some(q) = question {
                                lower(&mut question_jaccard[x], q.jaccard);
                                lower(&mut question_similarity[x], q.similarity);
                                by_answer[x] |= q.by_answer;
                            }
                        }
                    }
                }
                progress(band + 1, bands);
            }
        }
        let root = (0..n as u32).map(|i| uf.find(i)).collect();
        Ok(Clusters {
            root,
            similarity,
            question_jaccard,
            question_similarity,
            by_answer,
            exact_pairs,
            candidate_pairs,
            verified_pairs,
            question_rejected_pairs,
            question_edit_pairs,
        })
    }

    /// The distinct pairs `(a, b)`, a < b, sharing a bucket of `band`, not yet joined and not
    /// already rejected: within a bucket, each member with the first and with its
    /// `PAIR_WINDOW` predecessors. Texts joined to an earlier exact duplicate take no part
    /// (their first copy stands for them).
    fn band_pairs(
        &self,
        band: usize,
        uf: &mut UnionFind,
        rejected: &FastSet<u64>,
    ) -> Vec<(u32, u32)> {
        let bands = self.params.bands;
        let mut keyed: Vec<(u64, u32)> = (0..self.exact.len() as u32)
            .filter_map(|i| {
                let k = self.band_keys[i as usize * bands + band];
                (k != u64::MAX && !self.exact_copy[i as usize]).then_some((k, i))
            })
            .collect();
        keyed.par_sort_unstable();
        let mut pairs = Vec::new();
        let mut add = |a: u32, b: u32| {
            if uf.find(a) != uf.find(b) && !rejected.contains(&pair_key(a, b)) {
                pairs.push((a, b));
            }
        };
        for run in keyed.chunk_by(|a, b| a.0 == b.0).filter(|r| r.len() > 1) {
            for k in 1..run.len() {
                if k > PAIR_WINDOW {
                    add(run[0].1, run[k].1);
                }
                for j in k.saturating_sub(PAIR_WINDOW)..k {
                    add(run[j].1, run[k].1);
                }
            }
        }
        pairs.par_sort_unstable();
        pairs.dedup();
        pairs
    }

    fn read_set(&self, start: u64, end: u64) -> std::io::Result<Vec<u64>> {
        let mut buf = vec![0u8; ((end - start) * 8) as usize];
        read_exact_at(&self.spill_reader, &mut buf, start * 8)?;
        Ok(buf
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect())
    }

    /// The true Jaccard of a candidate pair and, when both have a question, whether the
    /// questions are the same (see the module docs).
    fn verify(&self, a: u32, b: u32) -> std::io::Result<Verdict> {
        let (a, b) = (a as usize, b as usize);
        let (start_a, start_b) = (self.spill_offsets[a], self.spill_offsets[b]);
        let (ka, qa) = (self.parts[a].0 as u64, self.parts[a].1 as usize);
        let (kb, qb) = (self.parts[b].0 as u64, self.parts[b].1 as usize);
        let key = jaccard(
            &self.read_set(start_a, start_a + ka)?,
            &self.read_set(start_b, start_b + kb)?,
        );
        if key < self.params.threshold {
            return Ok(Verdict::Below);
        }
        let question = match (qa > 0, qb > 0) {
            (false, false) => None,
            // A question + context record is near only another one (else one unsplit text
            // near two questions on one passage would chain them).
            (true, true) => {
                // The question's chars, then the answer's text.
                let rest_a = self.read_set(start_a + ka, self.spill_offsets[a + 1])?;
                let rest_b = self.read_set(start_b + kb, self.spill_offsets[b + 1])?;
                match self.same_question(rest_a.split_at(qa), rest_b.split_at(qb)) {
                    Some(q) => Some(q),
                    None => return Ok(Verdict::OtherQuestion),
                }
            }
            _ => return Ok(Verdict::OtherQuestion),
        };
        Ok(Verdict::Near { key, question })
    }

    /// The n-gram set of a packed answer's matching form (empty: no answer, or an empty form).
    fn answer_set(&self, packed: &[u64]) -> Vec<u64> {
        let form: Vec<char> = normalize(&unpack_text(packed))
            .separated()
            .chars()
            .collect();
        if form.is_empty() {
            Vec::new()
        } else {
            self.ngram_set(&form)
        }
    }

    /// Whether two (question chars, packed answer text) are the same question: question Jaccard
    /// at or above the threshold, or question edit similarity and answer Jaccard both are.
    fn same_question(&self, a: (&[u64], &[u64]), b: (&[u64], &[u64])) -> Option<QuestionMatch> {
        let t = self.params.threshold;
        let chars = |q: &[u64]| -> Vec<char> {
            q.iter()
                .map(|&c| char::from_u32(c as u32).unwrap_or('\u{FFFD}'))
                .collect()
        };
        let (qa, qb) = (chars(a.0), chars(b.0));
        let question = jaccard(&self.ngram_set(&qa), &self.ngram_set(&qb));
        if question >= t {
            return Some(QuestionMatch {
                jaccard: question,
                similarity: question,
                by_answer: false,
            });
        }
        let (answer_a, answer_b) = (self.answer_set(a.1), self.answer_set(b.1));
        if answer_a.is_empty() || answer_b.is_empty() || jaccard(&answer_a, &answer_b) < t {
            return None;
        }
        let longer = qa.len().max(qb.len());
        // One edit more than the threshold allows, so that the float test below decides.
        let max_edits = ((1.0 - t) * longer as f64).floor() as usize + 1;
        let edits = edit_distance(&qa, &qb, max_edits)?;
        let similarity = 1.0 - edits as f64 / longer as f64;
        (similarity >= t).then_some(QuestionMatch {
            jaccard: question,
            similarity,
            by_answer: true,
        })
    }
}

/// How the questions of a verified pair were found the same.
#[derive(Clone, Copy)]
struct QuestionMatch {
    jaccard: f64,
    /// The measure that decided: the Jaccard, or the edit similarity (`by_answer`).
    similarity: f64,
    by_answer: bool,
}

/// The outcome of verifying one candidate pair.
enum Verdict {
    Below,
    /// The keys are near duplicates, the questions are not (or only one has a question).
    OtherQuestion,
    Near {
        key: f64,
        question: Option<QuestionMatch>,
    },
}

/// A text for the spill: its length in bytes, then its UTF-8 bytes, 8 to a u64 (little endian,
/// the last one padded with zeros).
fn pack_text(text: &str) -> Vec<u64> {
    let bytes = text.as_bytes();
    let mut packed = Vec::with_capacity(1 + bytes.len().div_ceil(8));
    packed.push(bytes.len() as u64);
    packed.extend(bytes.chunks(8).map(|chunk| {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        u64::from_le_bytes(word)
    }));
    packed
}

/// The text [`pack_text`] packed ("" for an empty slice).
fn unpack_text(packed: &[u64]) -> String {
    let Some((&len, words)) = packed.split_first() else {
        return String::new();
    };
    let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    bytes.truncate(len as usize);
    // Bytes of a &str, read back from our own spill file.
    String::from_utf8(bytes).expect("the spill holds the UTF-8 it was given")
}

/// Lower `slot` (NaN: unset) to `value`.
fn lower(slot: &mut f32, value: f64) {
    let v = value as f32;
    *slot = if slot.is_nan() { v } else { slot.min(v) };
}

/// The MinHash signature of a set: per hash function (a, b), the least a·x + b (mod 2^64).
/// AVX2 is used where the CPU has it (the results are the same).
fn min_hashes(set: &[u64], perms: &[(u64, u64)]) -> Vec<u64> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { min_hashes_avx2(set, perms) };
    }
    min_hashes_portable(set, perms)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn min_hashes_avx2(set: &[u64], perms: &[(u64, u64)]) -> Vec<u64> {
    min_hashes_portable(set, perms)
}

/// Hash functions computed together over a whole set: their minima stay in registers (one
/// AVX2 vector) instead of going through memory once per set member, 3-4 times faster.
const MIN_HASH_BLOCK: usize = 4;

#[inline(always)]
fn min_hashes_portable(set: &[u64], perms: &[(u64, u64)]) -> Vec<u64> {
    let mut mins = vec![u64::MAX; perms.len()];
    for (block, out) in perms
        .chunks(MIN_HASH_BLOCK)
        .zip(mins.chunks_mut(MIN_HASH_BLOCK))
    {
        // A last, shorter block is padded; only its real minima are kept.
        let (mut a, mut b) = ([0u64; MIN_HASH_BLOCK], [0u64; MIN_HASH_BLOCK]);
        for (k, &(pa, pb)) in block.iter().enumerate() {
            (a[k], b[k]) = (pa, pb);
        }
        let mut m = [u64::MAX; MIN_HASH_BLOCK];
        for &x in set {
            for k in 0..MIN_HASH_BLOCK {
                m[k] = m[k].min(a[k].wrapping_mul(x).wrapping_add(b[k]));
            }
        }
        out.copy_from_slice(&m[..out.len()]);
    }
    mins
}

/// Jaccard similarity of two sorted, distinct sets (1.0 when both are empty).
fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    common as f64 / (a.len() + b.len() - common) as f64
}

/// Union-find whose root is always the smallest member (the first occurrence).
struct UnionFind {
    parent: Vec<u32>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n as u32).collect(),
        }
    }

    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let grand = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = grand;
            x = grand;
        }
        x
    }

    fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            let (lo, hi) = (ra.min(rb), ra.max(rb));
            self.parent[hi as usize] = lo;
        }
    }
}

/// The probability that a pair of Jaccard `j` shares at least one of `bands` LSH bands of `rows`
/// rows (the S-curve).
pub fn band_recall(j: f64, bands: usize, rows: usize) -> f64 {
    1.0 - (1.0 - j.powi(rows as i32)).powi(bands as i32)
}

/// The LSH shape for verified dedup: the most rows per band (fewest chance candidates) for
/// which some `bands` with `bands · rows <= num_perm` reaches `min_recall` at `threshold`, with
/// the fewest such bands (fewest hashes per text). `(num_perm, 1)` when none reaches it.
pub fn recall_bands(threshold: f64, num_perm: usize, min_recall: f64) -> (usize, usize) {
    for rows in (1..=num_perm).rev() {
        let max_bands = num_perm / rows;
        if let Some(bands) =
            (1..=max_bands).find(|&b| band_recall(threshold, b, rows) >= min_recall)
        {
            return (bands, rows);
        }
    }
    (num_perm, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(texts: &[&str], near: bool) -> Clusters {
        let dir = tempfile::tempdir().unwrap();
        let (bands, rows) = recall_bands(0.7, 128, 0.995);
        let params = DedupParams {
            near,
            ngram: 5,
            bands,
            rows,
            threshold: 0.7,
            seed: 1,
        };
        let mut d = Deduper::new(params, &dir.path().join("spill")).unwrap();
        d.add(texts, &vec![true; texts.len()], &[], &[]).unwrap();
        d.finish(&mut |_, _| {}).unwrap()
    }

    #[test]
    fn exact_duplicates_join_the_first() {
        let c = run(
            &[
                "Hello, World",
                "b",
                "hello world!",
                "Ｈｅｌｌｏ　ｗｏｒｌｄ",
            ],
            false,
        );
        assert_eq!(c.root, vec![0, 1, 0, 0]);
    }

    #[test]
    fn near_duplicates_are_verified() {
        let base = "日本の首都は東京です。東京には多くの人が住んでいて、交通機関が発達しています。\
                    古くは江戸と呼ばれ、徳川幕府が置かれた城下町として栄えました。";
        let edited =
            "日本の首都は東京です。東京には多くの人が住んでいて、交通機関が発達しています。\
                    古くは江戸と呼ばれ、徳川幕府の置かれた城下町として栄えました。";
        let other = "大阪は日本の西にある大都市で、食文化が豊かなことで知られています。たこ焼きが有名です。";
        let c = run(&[base, other, edited], true);
        assert_eq!(c.root, vec![0, 1, 0]);
        assert!(c.similarity[2] >= 0.7 && c.similarity[2] < 1.0);
    }

    #[test]
    fn exact_copies_leave_the_lsh_to_their_first_and_still_join_near_ones() {
        let base = "日本の首都は東京です。東京には多くの人が住んでいて、交通機関が発達しています。\
                    古くは江戸と呼ばれ、徳川幕府が置かれた城下町として栄えました。";
        let edited = base.replace("置かれた", "置かれていた");
        let mut texts = vec![base; 200];
        texts.push(&edited);
        let c = run(&texts, true);
        assert!(c.root.iter().all(|&r| r == 0));
        assert_eq!((c.exact_pairs, c.verified_pairs), (199, 1));
        assert_eq!(c.candidate_pairs, 1); // one bucket member per key, not 200
    }

    #[test]
    fn packed_texts_read_back_whole() {
        for text in [
            "",
            "a",
            "8 bytes!",
            "9 bytes!!",
            "摂氏650度です。",
            "🎉 emoji",
        ] {
            assert_eq!(unpack_text(&pack_text(text)), text);
        }
        assert_eq!(unpack_text(&[]), "");
    }

    #[test]
    fn min_hashes_are_the_least_hash_per_function() {
        let mut state = 7u64;
        let mut next = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            mix64(state)
        };
        // 4 blocks and a padded one (the padding must not leak into the last minima).
        let perms: Vec<(u64, u64)> = (0..18).map(|_| (next() | 1, next())).collect();
        for len in [0, 1, 5, 200] {
            let set: Vec<u64> = (0..len).map(|_| next()).collect();
            let expected: Vec<u64> = perms
                .iter()
                .map(|&(a, b)| {
                    set.iter()
                        .map(|&x| a.wrapping_mul(x).wrapping_add(b))
                        .min()
                        .unwrap_or(u64::MAX)
                })
                .collect();
            assert_eq!(min_hashes(&set, &perms), expected, "{len} members");
            assert_eq!(min_hashes_portable(&set, &perms), expected, "{len} members");
        }
    }

    #[test]
    fn recall_bands_reach_the_recall_with_the_most_rows() {
        for t in [0.5, 0.7, 0.8, 0.9] {
            let (b, r) = recall_bands(t, 128, 0.995);
            assert!(
                b * r <= 128 && band_recall(t, b, r) >= 0.995,
                "{t}: {b} x {r}"
            );
            assert!(band_recall(t, b - 1, r) < 0.995);
            let more_rows = (128 / (r + 1)).max(1);
            assert!(band_recall(t, more_rows, r + 1) < 0.995);
        }
        assert_eq!(recall_bands(0.8, 128, 0.995), (18, 6));
    }

    #[test]
    fn different_questions_on_one_passage_stay_apart() {
        let passage = "ヴァージン・オーストラリア航空は、オーストラリアを拠点とする航空会社です。\
                       ヴァージン・ブランドを使用する航空会社の中で、保有機材数では最大の航空会社である。\
                       2000年8月31日にヴァージン・ブルーとして、2機の航空機で運航を開始した。\
                       その後、ブリスベン、メルボルン、シドニーをハブとして成長した。";
        let (q1, q2) = ("いつ運航を開始したのですか？", "拠点はどこの国ですか？");
        let texts = [
            format!("{q1}\n{passage}"),
            format!("{q2}\n{passage}"),
            format!("{q1}\n{passage}とても"),
        ];
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let dir = tempfile::tempdir().unwrap();
        let (bands, rows) = recall_bands(0.8, 128, 0.995);
        let params = DedupParams {
            near: true,
            ngram: 5,
            bands,
            rows,
            threshold: 0.8,
            seed: 1,
        };
        let with_questions = |questions: &[Option<&str>]| {
            let mut d = Deduper::new(params, &dir.path().join("spill")).unwrap();
            d.add(&refs, &[true; 3], questions, &[]).unwrap();
            d.finish(&mut |_, _| {}).unwrap()
        };
        assert_eq!(with_questions(&[]).root, vec![0, 0, 0]);
        let c = with_questions(&[Some(q1), Some(q2), Some(q1)]);
        assert_eq!(c.root, vec![0, 1, 0]);
        assert_eq!(c.question_rejected_pairs, 2);
        assert_eq!(c.question_similarity[2], 1.0);
        assert!(c.question_similarity[1].is_nan());
    }

    #[test]
    fn a_typo_in_the_question_joins_only_with_the_same_answer() {
        let passage = "マグネシウムは原子番号12の元素で、元素記号はMgである。銀白色の軽い金属で、\
                       融点は摂氏650度、沸点は摂氏1090度である。地殻中に8番目に多く存在する元素で、\
                       海水中にも多く溶けている。合金の材料として航空機や自動車に使われる。";
        let q = "マグネシウムの融点は摂氏で何度でしょうか";
        let typo = "マグネシウムの融点は摂氏で何度でしょかう"; // one swap: 5-gram Jaccard 0.78
        let boiling = "マグネシウムの沸点は摂氏で何度でしょうか"; // one character: another question
        let dir = tempfile::tempdir().unwrap();
        let (bands, rows) = recall_bands(0.8, 128, 0.995);
        let params = DedupParams {
            near: true,
            ngram: 5,
            bands,
            rows,
            threshold: 0.8,
            seed: 1,
        };
        let run = |records: &[(&str, &str)]| {
            let texts: Vec<String> = records
                .iter()
                .map(|(q, _)| format!("{q}\n{passage}"))
                .collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let questions: Vec<Option<&str>> = records.iter().map(|r| Some(r.0)).collect();
            let answers: Vec<Option<&str>> = records.iter().map(|r| Some(r.1)).collect();
            let mut d = Deduper::new(params, &dir.path().join("spill")).unwrap();
            d.add(&refs, &vec![true; refs.len()], &questions, &answers)
                .unwrap();
            d.finish(&mut |_, _| {}).unwrap()
        };
        let c = run(&[
            (q, "摂氏650度です。"),
            (typo, "摂氏650度です"),
            (boiling, "摂氏1090度です。"),
        ]);
        assert_eq!(c.root, vec![0, 0, 2]);
        assert_eq!((c.question_edit_pairs, c.question_rejected_pairs), (1, 2));
        assert!(c.by_answer[1] && !c.by_answer[2]);
        assert!(c.question_jaccard[1] < 0.8);
        assert!((c.question_similarity[1] - 0.9).abs() < 1e-6); // 2 edits in 20
        let c = run(&[(q, "摂氏650度です。"), (typo, "軽い金属です。")]);
        assert_eq!(c.root, vec![0, 1]);
    }
}
