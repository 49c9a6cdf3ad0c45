//! Bindings of the packing kernels.

use plamo_fast_core::pack::bfd::best_fit_decreasing;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::to_py;

/// Best-fit-decreasing over `lengths` (each 1..=capacity). Returns `(items, row_starts)` as raw
/// little-endian bytes: `items` (uint32) lists item indices row after row, and row `r` holds
/// `items[row_starts[r]:row_starts[r + 1]]` (`row_starts` is uint64, one longer than the rows).
#[pyfunction]
pub fn best_fit_decreasing_rows<'py>(
    py: Python<'py>,
    lengths: Vec<u32>,
    capacity: u32,
    seed: u64,
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
    let bins = py
        .detach(|| best_fit_decreasing(&lengths, capacity, seed))
        .map_err(to_py)?;
    let mut items = Vec::with_capacity(lengths.len() * 4);
    let mut starts = Vec::with_capacity((bins.len() + 1) * 8);
    let mut count = 0u64;
    starts.extend_from_slice(&count.to_le_bytes());
    for bin in &bins {
        for &item in bin {
            items.extend_from_slice(&item.to_le_bytes());
        }
        count += bin.len() as u64;
        starts.extend_from_slice(&count.to_le_bytes());
    }
    Ok((PyBytes::new(py, &items), PyBytes::new(py, &starts)))
}

/// A fast (Rust) tokenizer loaded from `tokenizer.json`, labelling response tokens.
#[pyclass(module = "plamo_fast._native", frozen)]
pub struct ChatTokenizer {
    inner: plamo_fast_core::pack::mask::ChatTokenizer,
}

#[pymethods]
impl ChatTokenizer {
    #[new]
    fn new(path: std::path::PathBuf) -> PyResult<Self> {
        let inner = plamo_fast_core::pack::mask::ChatTokenizer::from_file(&path).map_err(to_py)?;
        Ok(ChatTokenizer { inner })
    }

    /// Token ids of `text`, without added special tokens.
    fn encode_ids(&self, py: Python<'_>, text: String) -> PyResult<Vec<u32>> {
        py.detach(|| self.inner.encode_ids(&text)).map_err(to_py)
    }

    /// Tokenizes each text and labels the tokens of its character spans (see the core docs).
    /// Returns `(ids, labels, offsets)` as raw little-endian bytes: uint32 ids and int32 labels
    /// back to back, document `i` at `offsets[i]:offsets[i + 1]` (uint64).
    fn encode_masked_batch<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        spans: Vec<Vec<(usize, usize)>>,
    ) -> PyResult<(
        Bound<'py, PyBytes>,
        Bound<'py, PyBytes>,
        Bound<'py, PyBytes>,
    )> {
        if texts.len() != spans.len() {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "{} texts but {} span lists",
                texts.len(),
                spans.len()
            )));
        }
        let docs: Vec<(String, Vec<(usize, usize)>)> = texts.into_iter().zip(spans).collect();
        let encoded = py
            .detach(|| self.inner.encode_masked_batch(&docs))
            .map_err(to_py)?;
        let total: usize = encoded.iter().map(|d| d.ids.len()).sum();
        let mut ids = Vec::with_capacity(total * 4);
        let mut labels = Vec::with_capacity(total * 4);
        let mut offsets = Vec::with_capacity((encoded.len() + 1) * 8);
        let mut cursor = 0u64;
        offsets.extend_from_slice(&cursor.to_le_bytes());
        for doc in &encoded {
            doc.ids
                .iter()
                .for_each(|i| ids.extend_from_slice(&i.to_le_bytes()));
            doc.labels
                .iter()
                .for_each(|l| labels.extend_from_slice(&l.to_le_bytes()));
            cursor += doc.ids.len() as u64;
            offsets.extend_from_slice(&cursor.to_le_bytes());
        }
        Ok((
            PyBytes::new(py, &ids),
            PyBytes::new(py, &labels),
            PyBytes::new(py, &offsets),
        ))
    }
}
