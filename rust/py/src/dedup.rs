//! Bindings of exact and near-duplicate detection.

use plamo_fast_core::dedup::{recall_bands, DedupParams, Deduper as CoreDeduper};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::to_py;

/// Streams texts in batches, then clusters them (see the core docs). The n-gram sets go to
/// `spill_path`, which `finish` removes.
#[pyclass(module = "plamo_fast._native")]
pub struct Deduper {
    pub(crate) inner: Option<CoreDeduper>,
}

#[pymethods]
impl Deduper {
    #[new]
    #[pyo3(signature = (
        spill_path, *, near, threshold=0.8, ngram=5, num_perm=128, seed=0, min_recall=0.995
    ))]
    fn new(
        spill_path: std::path::PathBuf,
        near: bool,
        threshold: f64,
        ngram: usize,
        num_perm: usize,
        seed: u64,
        min_recall: f64,
    ) -> PyResult<Self> {
        let (bands, rows) = Self::lsh_shape(threshold, num_perm, min_recall)?;
        if ngram == 0 {
            return Err(PyValueError::new_err("ngram must be positive"));
        }
        let params = DedupParams {
            near,
            ngram,
            bands,
            rows,
            threshold,
            seed,
        };
        let inner = CoreDeduper::new(params, &spill_path).map_err(to_py)?;
        Ok(Self { inner: Some(inner) })
    }

    /// Add texts; `near[i]` false keeps text i to exact dedup only; `questions[i]` is the
    /// question of text i when it has one (then text i is a near duplicate only of texts with
    /// the same question), `answers[i]` its answer (lets a question with small edits count as
    /// the same when the answers are near too).
    #[pyo3(signature = (texts, near, questions=None, answers=None))]
    fn add(
        &mut self,
        py: Python<'_>,
        texts: Vec<String>,
        near: Vec<bool>,
        questions: Option<Vec<Option<String>>>,
        answers: Option<Vec<Option<String>>>,
    ) -> PyResult<()> {
        let questions = questions.unwrap_or_default();
        let answers = answers.unwrap_or_default();
        let fits = |v: usize| v == 0 || v == texts.len();
        if texts.len() != near.len() || !fits(questions.len()) || !fits(answers.len()) {
            return Err(PyValueError::new_err(
                "texts, near, questions and answers differ in length",
            ));
        }
        let inner = self.inner.as_mut().ok_or_else(finished)?;
        py.detach(|| {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let qs: Vec<Option<&str>> = questions.iter().map(Option::as_deref).collect();
            let answers: Vec<Option<&str>> = answers.iter().map(Option::as_deref).collect();
            inner.add(&refs, &near, &qs, &answers)
        })
        .map_err(to_py)
    }

    fn __len__(&self) -> usize {
        self.inner.as_ref().map_or(0, |d| d.len())
    }

    /// Cluster: `(root, similarity, questions, stats)`; root (uint32 bytes) is each text's
    /// cluster's first text, similarity (float32 bytes) the lowest Jaccard that joined it;
    /// questions `(jaccard, similarity, by_answer)`: per text the lowest question Jaccard
    /// (float32 bytes, NaN: none compared), the lowest similarity that made its questions the
    /// same (float32 bytes: the Jaccard, or the edit similarity when the answers decided) and
    /// whether the answers decided for some pair (uint8 bytes); stats `(exact_pairs,
    /// candidate_pairs, verified_pairs, question_rejected_pairs, question_edit_pairs)`.
    #[allow(clippy::type_complexity)]
    fn finish<'py>(
        &mut self,
        py: Python<'py>,
    ) -> PyResult<(
        Bound<'py, PyBytes>,
        Bound<'py, PyBytes>,
        (
            Bound<'py, PyBytes>,
            Bound<'py, PyBytes>,
            Bound<'py, PyBytes>,
        ),
        (u64, u64, u64, u64, u64),
    )> {
        let inner = self.inner.take().ok_or_else(finished)?;
        let clusters = py.detach(|| inner.finish(&mut |_, _| {})).map_err(to_py)?;
        let root: Vec<u8> = clusters.root.iter().flat_map(|r| r.to_le_bytes()).collect();
        let by_answer: Vec<u8> = clusters.by_answer.iter().map(|&b| b as u8).collect();
        let f32_bytes = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|s| s.to_le_bytes()).collect() };
        Ok((
            PyBytes::new(py, &root),
            PyBytes::new(py, &f32_bytes(&clusters.similarity)),
            (
                PyBytes::new(py, &f32_bytes(&clusters.question_jaccard)),
                PyBytes::new(py, &f32_bytes(&clusters.question_similarity)),
                PyBytes::new(py, &by_answer),
            ),
            (
                clusters.exact_pairs,
                clusters.candidate_pairs,
                clusters.verified_pairs,
                clusters.question_rejected_pairs,
                clusters.question_edit_pairs,
            ),
        ))
    }

    /// `(bands, rows)` of the LSH: the most rows per band for which a number of bands (the
    /// fewest, with bands x rows <= num_perm) finds a pair exactly at the threshold with
    /// probability at least `min_recall` (every candidate is verified, so the shape leans to
    /// recall).
    #[staticmethod]
    #[pyo3(signature = (threshold, num_perm, min_recall=0.995))]
    fn lsh_shape(threshold: f64, num_perm: usize, min_recall: f64) -> PyResult<(usize, usize)> {
        if !(threshold > 0.0 && threshold <= 1.0)
            || num_perm == 0
            || !(0.0..1.0).contains(&min_recall)
        {
            return Err(PyValueError::new_err(
                "threshold must be in (0, 1], num_perm positive, min_recall in [0, 1)",
            ));
        }
        Ok(recall_bands(threshold, num_perm, min_recall))
    }
}

pub(crate) fn finished() -> PyErr {
    PyRuntimeError::new_err("this Deduper has already finished")
}
