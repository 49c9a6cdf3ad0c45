//! Bindings of the packing kernels.

use plamo_fast_core::pack::bfd::best_fit_decreasing;
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
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

fn contiguous<T: pyo3::buffer::Element>(
    buffer: &PyBuffer<T>,
    what: &str,
) -> PyResult<std::ptr::NonNull<[T]>> {
    buffer
        .as_slice_ptr()
        .ok_or_else(|| PyValueError::new_err(format!("{what} must be C-contiguous")))
}

/// A C-contiguous buffer (a numpy array) seen as a slice, valid while `buffer` lives.
fn read_slice<'a, T: pyo3::buffer::Element>(
    buffer: &'a PyBuffer<T>,
    what: &str,
) -> PyResult<&'a [T]> {
    // SAFETY: the buffer protocol keeps the memory alive and in place while `buffer` is held,
    // and no Python code runs while the slice is in use.
    Ok(unsafe { contiguous(buffer, what)?.as_ref() })
}

/// Like [`read_slice`], for an output buffer (refused when read-only).
fn write_slice<'a, T: pyo3::buffer::Element>(
    buffer: &'a mut PyBuffer<T>,
    what: &str,
) -> PyResult<&'a mut [T]> {
    if buffer.readonly() {
        return Err(PyValueError::new_err(format!("{what} must be writable")));
    }
    // SAFETY: as in `read_slice`; the buffer is writable and borrowed mutably here.
    Ok(unsafe { contiguous(buffer, what)?.as_mut() })
}

/// Copies documents (document `d` is `tokens[doc_offsets[d]:doc_offsets[d + 1]]`) in the order
/// `order` into the preallocated `out_ids`, `out_labels` and `out_positions` (int32 arrays as
/// long as those documents together); each document's first label becomes -100 and its
/// positions restart at 0. Inputs are int32 (`tokens`, `labels`) and int64 arrays.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn gather_documents(
    py: Python<'_>,
    tokens: PyBuffer<i32>,
    labels: PyBuffer<i32>,
    doc_offsets: PyBuffer<i64>,
    order: PyBuffer<i64>,
    mut out_ids: PyBuffer<i32>,
    mut out_labels: PyBuffer<i32>,
    mut out_positions: PyBuffer<i32>,
) -> PyResult<()> {
    use plamo_fast_core::pack::gather::{document_spans, gather_into};

    let tokens_s = read_slice(&tokens, "tokens")?;
    let labels_s = read_slice(&labels, "labels")?;
    let offsets_s = read_slice(&doc_offsets, "doc_offsets")?;
    let order_s = read_slice(&order, "order")?;
    let ids = write_slice(&mut out_ids, "out_ids")?;
    let labs = write_slice(&mut out_labels, "out_labels")?;
    let pos = write_slice(&mut out_positions, "out_positions")?;
    let spans = document_spans(tokens_s.len(), offsets_s, order_s).map_err(to_py)?;
    py.detach(|| gather_into(tokens_s, labels_s, &spans, ids, labs, pos))
        .map_err(to_py)
}
