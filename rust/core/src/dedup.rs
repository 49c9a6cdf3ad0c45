//! Exact and near-duplicate detection over a stream of texts, with bounded memory.
//!
//! Each text is reduced to its matching form ([`crate::text`]). Exact duplicates share the
//! 128-bit hash of that form. Near duplicates: MinHash over the distinct character n-grams,
//! LSH with `bands` bands of `rows` rows proposes candidate pairs, and each candidate pair is
//! verified by the true Jaccard similarity of the two n-gram sets. Verified pairs and exact
//! duplicates are joined by union-find; each cluster's root is its first text.
//!
//! Per text, memory holds only the exact hash and the band keys; the n-gram sets (32-bit hashes,
//! sorted) are appended to a spill file and read back (positioned reads) for verification, so
//! inputs far larger than memory work.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_128;

use crate::error::{Error, Result};
use crate::leak::FastSet;
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
    shingles: Vec<u32>,
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
    spill_offsets: Vec<u64>,
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
    pub exact_pairs: u64,
    pub candidate_pairs: u64,
    pub verified_pairs: u64,
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
    pub fn add(&mut self, texts: &[&str], near: &[bool]) -> Result<()> {
        if self.exact.len() + texts.len() > u32::MAX as usize {
            return Err(Error::InvalidArgument(format!(
                "dedup handles at most {} records per run",
                u32::MAX
            )));
        }
        let sketches: Vec<Sketch> = texts
            .par_iter()
            .zip(near.par_iter())
            .map(|(text, &near)| self.sketch(text, near && self.params.near))
            .collect();
        for s in sketches {
            self.exact.push(s.exact);
            self.band_keys.extend_from_slice(&s.bands);
            for h in &s.shingles {
                self.spill
                    .write_all(&h.to_le_bytes())
                    .map_err(|e| Error::io(&self.spill_path, e))?;
            }
            let last = *self.spill_offsets.last().unwrap();
            self.spill_offsets.push(last + s.shingles.len() as u64);
        }
        Ok(())
    }

    fn sketch(&self, text: &str, near: bool) -> Sketch {
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
            };
        }
        let n = self.params.ngram.min(chars.len());
        let mut set: FastSet<u64> = FastSet::default();
        set.extend(chars.windows(n).map(hash_chars));
        let mut mins = vec![u64::MAX; self.perms.len()];
        for &x in &set {
            for (m, &(a, b)) in mins.iter_mut().zip(&self.perms) {
                let v = a.wrapping_mul(x).wrapping_add(b);
                if v < *m {
                    *m = v;
                }
            }
        }
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
        let mut shingles: Vec<u32> = set.iter().map(|&h| (h >> 32) as u32).collect();
        shingles.sort_unstable();
        shingles.dedup();
        Sketch {
            exact,
            bands,
            shingles,
        }
    }

    /// Cluster everything added. `progress(done, total)` is called per LSH band.
    pub fn finish(mut self, progress: &mut dyn FnMut(usize, usize)) -> Result<Clusters> {
        self.spill
            .flush()
            .map_err(|e| Error::io(&self.spill_path, e))?;
        let n = self.exact.len();
        let mut uf = UnionFind::new(n);
        let mut similarity = vec![1.0f32; n];
        let mut exact_pairs = 0;
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.par_sort_unstable_by_key(|&i| (self.exact[i as usize], i));
        for w in order.windows(2) {
            let key = self.exact[w[0] as usize];
            if key != NO_KEY && key == self.exact[w[1] as usize] {
                uf.union(w[0], w[1]);
                exact_pairs += 1;
            }
        }
        let (mut candidate_pairs, mut verified_pairs) = (0, 0);
        if self.params.near && n > 1 {
            // Sets are read back with positioned reads, not a memory map: only candidate pairs
            // are read, and the kernel's page cache (not this process's RSS) holds the file.
            let file = &self.spill_reader;
            let read_set = |i: u32| -> std::io::Result<Vec<u8>> {
                let (s, e) = (
                    self.spill_offsets[i as usize] * 4,
                    self.spill_offsets[i as usize + 1] * 4,
                );
                let mut buf = vec![0u8; (e - s) as usize];
                file.read_exact_at(&mut buf, s)?;
                Ok(buf)
            };
            let bands = self.params.bands;
            let mut keyed: Vec<(u64, u32)> = Vec::with_capacity(n);
            for band in 0..bands {
                keyed.clear();
                keyed.extend((0..n).filter_map(|i| {
                    let k = self.band_keys[i * bands + band];
                    (k != u64::MAX).then_some((k, i as u32))
                }));
                keyed.par_sort_unstable();
                let mut pairs: Vec<(u32, u32)> = Vec::new();
                for run in keyed.chunk_by(|a, b| a.0 == b.0).filter(|r| r.len() > 1) {
                    for k in 1..run.len() {
                        pairs.push((run[0].1, run[k].1));
                        if k > 1 {
                            pairs.push((run[k - 1].1, run[k].1));
                        }
                    }
                }
                pairs.retain(|&(a, b)| uf.find(a) != uf.find(b));
                candidate_pairs += pairs.len() as u64;
                let verified = pairs
                    .par_iter()
                    .map(|&(a, b)| {
                        let j = jaccard_le_u32(&read_set(a)?, &read_set(b)?);
                        Ok((j >= self.params.threshold).then_some((a, b, j)))
                    })
                    .collect::<std::io::Result<Vec<Option<(u32, u32, f64)>>>>()
                    .map_err(|e| Error::io(&self.spill_path, e))?;
                for (a, b, j) in verified.into_iter().flatten() {
                    if uf.find(a) != uf.find(b) {
                        uf.union(a, b);
                        verified_pairs += 1;
                        for x in [a, b] {
                            similarity[x as usize] = similarity[x as usize].min(j as f32);
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
            exact_pairs,
            candidate_pairs,
            verified_pairs,
        })
    }
}

/// Jaccard similarity of two sorted, distinct sets of little-endian u32s.
fn jaccard_le_u32(a: &[u8], b: &[u8]) -> f64 {
    let read = |s: &[u8], i: usize| u32::from_le_bytes(s[i * 4..i * 4 + 4].try_into().unwrap());
    let (na, nb) = (a.len() / 4, b.len() / 4);
    if na == 0 && nb == 0 {
        return 1.0;
    }
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < na && j < nb {
        let (x, y) = (read(a, i), read(b, j));
        match x.cmp(&y) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    common as f64 / (na + nb - common) as f64
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

/// The (bands, rows) with bands·rows = `num_perm` minimising the weighted sum of the false
/// positive and false negative probabilities at `threshold` (the usual MinHash LSH choice, as in
/// datasketch), integrated numerically.
pub fn optimal_bands(
    threshold: f64,
    num_perm: usize,
    fp_weight: f64,
    fn_weight: f64,
) -> (usize, usize) {
    let integrate = |f: &dyn Fn(f64) -> f64, a: f64, b: f64| {
        let steps = 1000;
        let h = (b - a) / steps as f64;
        (0..steps)
            .map(|k| f(a + (k as f64 + 0.5) * h) * h)
            .sum::<f64>()
    };
    let mut best = (f64::INFINITY, (1, num_perm));
    for bands in 1..=num_perm {
        let max_rows = num_perm / bands;
        for rows in 1..=max_rows {
            let (b, r) = (bands as f64, rows as i32);
            let fp = integrate(&|s| 1.0 - (1.0 - s.powi(r)).powf(b), 0.0, threshold);
            let fneg = integrate(&|s| 1.0 - (1.0 - (1.0 - s.powi(r)).powf(b)), threshold, 1.0);
            let err = fp * fp_weight + fneg * fn_weight;
            if err < best.0 {
                best = (err, (bands, rows));
            }
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(texts: &[&str], near: bool) -> Clusters {
        let dir = tempfile::tempdir().unwrap();
        let (bands, rows) = optimal_bands(0.7, 128, 0.5, 0.5);
        let params = DedupParams {
            near,
            ngram: 5,
            bands,
            rows,
            threshold: 0.7,
            seed: 1,
        };
        let mut d = Deduper::new(params, &dir.path().join("spill")).unwrap();
        d.add(texts, &vec![true; texts.len()]).unwrap();
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
    fn optimal_bands_match_datasketch_choice() {
        // datasketch 2.0 MinHashLSH(threshold, num_perm=128) picks these (b, r).
        for (t, shape) in [
            (0.5, (25, 5)),
            (0.7, (14, 9)),
            (0.8, (9, 13)),
            (0.9, (5, 25)),
        ] {
            assert_eq!(optimal_bands(t, 128, 0.5, 0.5), shape);
        }
    }
}
