//! Bindings of exact and near-duplicate detection.

use plamo_fast_core::dedup::{optimal_bands, DedupParams, Deduper as CoreDeduper};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::to_py;

/// Streams texts in batches, then clusters them (see the core docs). The n-gram sets go to
/// `spill_path`, which `finish` removes.
#[pyclass(module = "plamo_fast._native")]
pub struct Deduper {
    inner: Option<CoreDeduper>,
}

#[pymethods]
impl Deduper {
    #[new]
    #[pyo3(signature = (
        spill_path, *, near, threshold=0.8, ngram=5, num_perm=128, seed=0,
        false_negative_weight=0.8
    ))]
    fn new(
        spill_path: std::path::PathBuf,
        near: bool,
        threshold: f64,
        ngram: usize,
        num_perm: usize,
        seed: u64,
        false_negative_weight: f64,
    ) -> PyResult<Self> {
        let (bands, rows) = Self::lsh_shape(threshold, num_perm, false_negative_weight)?;
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

    /// Add texts; `near[i]` false keeps text i to exact dedup only.
    fn add(&mut self, py: Python<'_>, texts: Vec<String>, near: Vec<bool>) -> PyResult<()> {
        if texts.len() != near.len() {
            return Err(PyValueError::new_err("texts and near differ in length"));
        }
        let inner = self.inner.as_mut().ok_or_else(finished)?;
        py.detach(|| {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            inner.add(&refs, &near)
        })
        .map_err(to_py)
    }

    fn __len__(&self) -> usize {
        self.inner.as_ref().map_or(0, |d| d.len())
    }

    /// Cluster: `(root, similarity, stats)`; root (uint32 bytes) is each text's cluster's first
    /// text, similarity (float32 bytes) the Jaccard that joined it.
    #[allow(clippy::type_complexity)]
    fn finish<'py>(
        &mut self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>, (u64, u64, u64))> {
        let inner = self.inner.take().ok_or_else(finished)?;
        let clusters = py.detach(|| inner.finish(&mut |_, _| {})).map_err(to_py)?;
        let root: Vec<u8> = clusters.root.iter().flat_map(|r| r.to_le_bytes()).collect();
        let sim: Vec<u8> = clusters
            .similarity
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        Ok((
            PyBytes::new(py, &root),
            PyBytes::new(py, &sim),
            (
                clusters.exact_pairs,
                clusters.candidate_pairs,
                clusters.verified_pairs,
            ),
        ))
    }

    /// `(bands, rows)` of the LSH: the shape minimising the weighted false positive and false
    /// negative probabilities (weight 0.5 gives datasketch's choice; candidates are verified by
    /// true Jaccard here, so the default leans towards recall).
    #[staticmethod]
    #[pyo3(signature = (threshold, num_perm, false_negative_weight=0.8))]
    fn lsh_shape(
        threshold: f64,
        num_perm: usize,
        false_negative_weight: f64,
    ) -> PyResult<(usize, usize)> {
        if !(threshold > 0.0 && threshold <= 1.0)
            || num_perm == 0
            || !(0.0..=1.0).contains(&false_negative_weight)
        {
            return Err(PyValueError::new_err(
                "threshold must be in (0, 1], num_perm positive, false_negative_weight in [0, 1]",
            ));
        }
        Ok(optimal_bands(
            threshold,
            num_perm,
            1.0 - false_negative_weight,
            false_negative_weight,
        ))
    }
}

fn finished() -> PyErr {
    PyRuntimeError::new_err("this Deduper has already finished")
}
