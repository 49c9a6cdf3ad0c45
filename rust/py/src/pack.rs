//! Bindings of the packing kernels.

use plamo_fast_core::pack::bfd::best_fit_decreasing;
use std::ops::Range;
use std::ptr::NonNull;

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

/// The memory of a C-contiguous buffer (a numpy array); it stays valid while `buffer` lives.
fn contiguous<T: pyo3::buffer::Element>(
    buffer: &PyBuffer<T>,
    what: &str,
) -> PyResult<NonNull<[T]>> {
    buffer
        .as_slice_ptr()
        .ok_or_else(|| PyValueError::new_err(format!("{what} must be C-contiguous")))
}

/// Like [`contiguous`], for an output buffer (refused when read-only).
fn writable<T: pyo3::buffer::Element>(buffer: &PyBuffer<T>, what: &str) -> PyResult<NonNull<[T]>> {
    if buffer.readonly() {
        return Err(PyValueError::new_err(format!("{what} must be writable")));
    }
    contiguous(buffer, what)
}

/// The addresses of the bytes of `memory`.
fn addresses<T>(memory: NonNull<[T]>) -> Range<usize> {
    let start = memory.as_ptr() as *const T as usize;
    start..start + memory.len() * std::mem::size_of::<T>()
}

/// Refuses an output that shares memory with another output or with an input (inputs may
/// share memory with each other: they are only read).
fn refuse_overlaps(
    outputs: &[(&str, Range<usize>)],
    inputs: &[(&str, Range<usize>)],
) -> PyResult<()> {
    for (i, (name, out)) in outputs.iter().enumerate() {
        for (other, range) in outputs[..i].iter().chain(inputs) {
            if out.start < range.end && range.start < out.end {
                return Err(PyValueError::new_err(format!(
                    "{name} shares memory with {other}; pass a separate array"
                )));
            }
        }
    }
    Ok(())
}

/// Copies documents (document `d` is `tokens[doc_offsets[d]:doc_offsets[d + 1]]`) in the order
/// `order` into the preallocated `out_ids`, `out_labels` and `out_positions` (int32 arrays as
/// long as those documents together, sharing memory with no other argument); each document's
/// first label becomes -100 and its positions restart at 0. Inputs are int32 (`tokens`,
/// `labels`) and int64 arrays. The copy runs in parallel while this call keeps the GIL.
#[pyfunction]
pub fn gather_documents(
    tokens: PyBuffer<i32>,
    labels: PyBuffer<i32>,
    doc_offsets: PyBuffer<i64>,
    order: PyBuffer<i64>,
    out_ids: PyBuffer<i32>,
    out_labels: PyBuffer<i32>,
    out_positions: PyBuffer<i32>,
) -> PyResult<()> {
    use plamo_fast_core::pack::gather::{document_spans, gather_into};

    let tokens_m = contiguous(&tokens, "tokens")?;
    let labels_m = contiguous(&labels, "labels")?;
    let offsets_m = contiguous(&doc_offsets, "doc_offsets")?;
    let order_m = contiguous(&order, "order")?;
    let mut ids_m = writable(&out_ids, "out_ids")?;
    let mut labels_out_m = writable(&out_labels, "out_labels")?;
    let mut pos_m = writable(&out_positions, "out_positions")?;
    refuse_overlaps(
        &[
            ("out_ids", addresses(ids_m)),
            ("out_labels", addresses(labels_out_m)),
            ("out_positions", addresses(pos_m)),
        ],
        &[
            ("tokens", addresses(tokens_m)),
            ("labels", addresses(labels_m)),
            ("doc_offsets", addresses(offsets_m)),
            ("order", addresses(order_m)),
        ],
    )?;
    // SAFETY: each buffer is held until this function returns, and the buffer protocol keeps
    // its memory alive and in place meanwhile. The outputs are writable and share memory with
    // no other argument (checked above), so each `&mut` slice is the only reference to its
    // memory; the inputs are only read. The GIL stays held for the whole copy (nothing here
    // releases it), so no Python code runs that could write to or free these buffers. (As for
    // any numpy function, native code in another thread that has released the GIL must not
    // write them meanwhile.)
    let (tokens_s, labels_s, offsets_s, order_s, ids, labs, pos) = unsafe {
        (
            tokens_m.as_ref(),
            labels_m.as_ref(),
            offsets_m.as_ref(),
            order_m.as_ref(),
            ids_m.as_mut(),
            labels_out_m.as_mut(),
            pos_m.as_mut(),
        )
    };
    let spans = document_spans(tokens_s.len(), offsets_s, order_s).map_err(to_py)?;
    gather_into(tokens_s, labels_s, &spans, ids, labs, pos).map_err(to_py)
}

/// Like [`gather_documents`], reading the documents from the spill files `tokens_path` and
/// `labels_path` (little-endian int32, back to back, as long as each other) with positional
/// reads instead of from memory, so that only the outputs are resident (the files are never
/// mapped). The reads run in parallel while this call keeps the GIL.
#[pyfunction]
pub fn gather_spilled(
    tokens_path: std::path::PathBuf,
    labels_path: std::path::PathBuf,
    doc_offsets: PyBuffer<i64>,
    order: PyBuffer<i64>,
    out_ids: PyBuffer<i32>,
    out_labels: PyBuffer<i32>,
    out_positions: PyBuffer<i32>,
) -> PyResult<()> {
    use plamo_fast_core::pack::gather::{document_spans, gather_from_files};

    let values = |path: &std::path::Path| -> PyResult<usize> {
        let bytes = std::fs::metadata(path)
            .map_err(|e| to_py(plamo_fast_core::error::Error::io(path, e)))?
            .len();
        Ok((bytes / 4) as usize)
    };
    let tokens = values(&tokens_path)?;
    if values(&labels_path)? != tokens {
        return Err(PyValueError::new_err(
            "the token and label spill files differ in length",
        ));
    }
    let offsets_m = contiguous(&doc_offsets, "doc_offsets")?;
    let order_m = contiguous(&order, "order")?;
    let mut ids_m = writable(&out_ids, "out_ids")?;
    let mut labels_out_m = writable(&out_labels, "out_labels")?;
    let mut pos_m = writable(&out_positions, "out_positions")?;
    refuse_overlaps(
        &[
            ("out_ids", addresses(ids_m)),
            ("out_labels", addresses(labels_out_m)),
            ("out_positions", addresses(pos_m)),
        ],
        &[
            ("doc_offsets", addresses(offsets_m)),
            ("order", addresses(order_m)),
        ],
    )?;
    // SAFETY: as in `gather_documents`: each buffer is held until this function returns and
    // its memory stays in place; the outputs are writable and share memory with no other
    // argument (checked above), so each `&mut` slice is the only reference to its memory. The
    // GIL stays held for the whole call, so no Python code runs that could write these buffers.
    let (offsets_s, order_s, ids, labs, pos) = unsafe {
        (
            offsets_m.as_ref(),
            order_m.as_ref(),
            ids_m.as_mut(),
            labels_out_m.as_mut(),
            pos_m.as_mut(),
        )
    };
    let spans = document_spans(tokens, offsets_s, order_s).map_err(to_py)?;
    gather_from_files(&tokens_path, &labels_path, &spans, ids, labs, pos).map_err(to_py)
}
