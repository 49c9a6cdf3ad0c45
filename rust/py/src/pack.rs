//! Bindings of the packing kernels.

use plamo_fast_core::pack::bfd::best_fit_decreasing;
use std::ops::Range;
use std::ptr::NonNull;

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::to_py;

/// Best-fit-decreasing over `lengths` (a uint32 buffer, each 1..=capacity). Returns `(items,
/// row_starts)` as raw little-endian bytes: `items` (uint32) lists item indices row after row,
/// and row `r` holds `items[row_starts[r]:row_starts[r + 1]]` (`row_starts` is uint64, one
/// longer than the rows).
#[pyfunction]
pub fn best_fit_decreasing_rows<'py>(
    py: Python<'py>,
    lengths: PyBuffer<u32>,
    capacity: u32,
    seed: u64,
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
    let lengths = lengths.to_vec(py)?;
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
pub(crate) fn contiguous<T: pyo3::buffer::Element>(
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
/// `labels`) and int64 arrays. [`gather_chunks`] with one chunk.
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
    gather_chunks(
        vec![tokens],
        vec![labels],
        doc_offsets,
        order,
        out_ids,
        out_labels,
        out_positions,
    )
}

/// Like [`gather_documents`], the documents held in chunks (lists `tokens` and `labels` of int32
/// arrays, as long as each other pairwise) taken as if put end to end: `doc_offsets` index that
/// concatenation and each document must lie within one chunk. Nothing is concatenated; the
/// copy runs in parallel while this call keeps the GIL.
#[pyfunction]
pub fn gather_chunks(
    tokens: Vec<PyBuffer<i32>>,
    labels: Vec<PyBuffer<i32>>,
    doc_offsets: PyBuffer<i64>,
    order: PyBuffer<i64>,
    out_ids: PyBuffer<i32>,
    out_labels: PyBuffer<i32>,
    out_positions: PyBuffer<i32>,
) -> PyResult<()> {
    use plamo_fast_core::pack::gather::{document_spans, gather_from_chunks};

    let tokens_m = tokens
        .iter()
        .map(|b| contiguous(b, "tokens"))
        .collect::<PyResult<Vec<_>>>()?;
    let labels_m = labels
        .iter()
        .map(|b| contiguous(b, "labels"))
        .collect::<PyResult<Vec<_>>>()?;
    let offsets_m = contiguous(&doc_offsets, "doc_offsets")?;
    let order_m = contiguous(&order, "order")?;
    let mut ids_m = writable(&out_ids, "out_ids")?;
    let mut labels_out_m = writable(&out_labels, "out_labels")?;
    let mut pos_m = writable(&out_positions, "out_positions")?;
    let mut inputs = vec![
        ("doc_offsets", addresses(offsets_m)),
        ("order", addresses(order_m)),
    ];
    inputs.extend(tokens_m.iter().map(|&m| ("tokens", addresses(m))));
    inputs.extend(labels_m.iter().map(|&m| ("labels", addresses(m))));
    refuse_overlaps(
        &[
            ("out_ids", addresses(ids_m)),
            ("out_labels", addresses(labels_out_m)),
            ("out_positions", addresses(pos_m)),
        ],
        &inputs,
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
            tokens_m.iter().map(|m| m.as_ref()).collect::<Vec<&[i32]>>(),
            labels_m.iter().map(|m| m.as_ref()).collect::<Vec<&[i32]>>(),
            offsets_m.as_ref(),
            order_m.as_ref(),
            ids_m.as_mut(),
            labels_out_m.as_mut(),
            pos_m.as_mut(),
        )
    };
    let total = tokens_s.iter().map(|c| c.len()).sum();
    let spans = document_spans(total, offsets_s, order_s).map_err(to_py)?;
    gather_from_chunks(&tokens_s, &labels_s, &spans, ids, labs, pos).map_err(to_py)
}

/// Like [`gather_documents`], reading the documents from the spill files `tokens_path` and
/// `labels_path` with positional reads instead of from memory, so that only the outputs are
/// resident (the files are never mapped). Tokens are little-endian int32 values back to back;
/// labels are as many such values, or with `labels_masked` one bit per token (see
/// [`LabelMaskSpill`]). The reads run in parallel with the GIL released (so that another
/// thread, such as the one encoding the previous chunk, runs meanwhile): no other thread may
/// use the outputs during the call.
#[pyfunction]
#[pyo3(signature = (tokens_path, labels_path, doc_offsets, order, out_ids, out_labels, out_positions, *, labels_masked = false))]
#[allow(clippy::too_many_arguments)] // the Python signature, plus the GIL token
pub fn gather_spilled(
    py: Python<'_>,
    tokens_path: std::path::PathBuf,
    labels_path: std::path::PathBuf,
    doc_offsets: PyBuffer<i64>,
    order: PyBuffer<i64>,
    out_ids: PyBuffer<i32>,
    out_labels: PyBuffer<i32>,
    out_positions: PyBuffer<i32>,
    labels_masked: bool,
) -> PyResult<()> {
    use plamo_fast_core::pack::gather::{document_spans, gather_from_files, LabelSpill};

    let bytes = |path: &std::path::Path| -> PyResult<usize> {
        let bytes = std::fs::metadata(path)
            .map_err(|e| to_py(plamo_fast_core::error::Error::io(path, e)))?
            .len();
        Ok(bytes as usize)
    };
    let tokens = bytes(&tokens_path)? / 4;
    let labels_fit = if labels_masked {
        bytes(&labels_path)? == tokens.div_ceil(8)
    } else {
        bytes(&labels_path)? / 4 == tokens
    };
    if !labels_fit {
        return Err(PyValueError::new_err(
            "the token and label spill files differ in length",
        ));
    }
    let labels = if labels_masked {
        LabelSpill::Mask(&labels_path)
    } else {
        LabelSpill::Values(&labels_path)
    };
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
    // SAFETY: as in `gather_chunks`: each buffer is held until this function returns and
    // its memory stays in place; the outputs are writable and share memory with no other
    // argument (checked above), so each `&mut` slice is the only reference to its memory from
    // this call. The inputs are read (into `spans`) while the GIL is held; the GIL is released
    // only for the copy into the outputs, which the caller keeps to itself meanwhile (the
    // contract of numpy functions that release the GIL).
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
    py.detach(|| gather_from_files(&tokens_path, labels, &spans, ids, labs, pos))
        .map_err(to_py)
}

/// pack's label spill as one bit per token while every label is its token or -100 (see
/// `plamo_fast_core::pack::spill`): `append(ids, labels)` (int32 buffers) writes their bits and
/// returns True, or returns False and writes nothing when a label has another form; `close()`
/// writes the last partial byte and returns the bits written.
#[pyclass(module = "plamo_fast._native")]
pub struct LabelMaskSpill {
    inner: Option<plamo_fast_core::pack::spill::LabelMaskWriter>,
}

#[pymethods]
impl LabelMaskSpill {
    #[new]
    fn new(path: std::path::PathBuf) -> PyResult<Self> {
        let inner = plamo_fast_core::pack::spill::LabelMaskWriter::create(&path).map_err(to_py)?;
        Ok(Self { inner: Some(inner) })
    }

    fn append(&mut self, ids: PyBuffer<i32>, labels: PyBuffer<i32>) -> PyResult<bool> {
        let writer = self
            .inner
            .as_mut()
            .ok_or_else(|| PyValueError::new_err("the label mask spill is closed"))?;
        let ids_m = contiguous(&ids, "ids")?;
        let labels_m = contiguous(&labels, "labels")?;
        // SAFETY: both buffers are held until this function returns and the buffer protocol
        // keeps their memory in place; they are only read, with the GIL held.
        let (ids_s, labels_s) = unsafe { (ids_m.as_ref(), labels_m.as_ref()) };
        writer.append(ids_s, labels_s).map_err(to_py)
    }

    /// The bits appended so far.
    #[getter]
    fn bits(&self) -> u64 {
        self.inner.as_ref().map_or(0, |w| w.bits())
    }

    fn close(&mut self) -> PyResult<u64> {
        match self.inner.take() {
            Some(writer) => writer.finish().map_err(to_py),
            None => Ok(0),
        }
    }
}

/// Writes `out`: the int32 labels (little-endian) of the first `values` tokens of the token
/// spill `tokens_path` and the label mask `mask_path` (when a later label needs the values).
#[pyfunction]
pub fn labels_from_mask(
    py: Python<'_>,
    tokens_path: std::path::PathBuf,
    mask_path: std::path::PathBuf,
    values: usize,
    out: std::path::PathBuf,
) -> PyResult<()> {
    py.detach(|| {
        plamo_fast_core::pack::spill::labels_from_mask(&tokens_path, &mask_path, values, &out)
    })
    .map_err(to_py)
}

/// The checked rows' trained-token counts, from `input_ids` and `labels` list buffers: flat
/// values (both int32 or both int64) and int64 row offsets. `None` when any row would be
/// refused (see the core `trained_counts`); the caller then checks that batch row by row to
/// name each refusal. Returns the counts as little-endian int64 bytes. Runs with the GIL
/// released over read-only buffers.
#[pyfunction]
pub fn pretokenized_trained_counts<'py>(
    py: Python<'py>,
    ids: &Bound<'py, PyAny>,
    ids_offsets: PyBuffer<i64>,
    labels: &Bound<'py, PyAny>,
    label_offsets: PyBuffer<i64>,
    limit: i64,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let ids_off = ids_offsets.to_vec(py)?;
    let lab_off = label_offsets.to_vec(py)?;
    let counts = if let (Ok(i), Ok(l)) = (PyBuffer::<i32>::get(ids), PyBuffer::<i32>::get(labels)) {
        trained_of(py, &i, &ids_off, &l, &lab_off, limit)?
    } else {
        let i = PyBuffer::<i64>::get(ids)?;
        let l = PyBuffer::<i64>::get(labels)?;
        trained_of(py, &i, &ids_off, &l, &lab_off, limit)?
    };
    Ok(counts.map(|c| {
        let bytes: Vec<u8> = c.iter().flat_map(|v| v.to_le_bytes()).collect();
        PyBytes::new(py, &bytes)
    }))
}

/// [`pretokenized_trained_counts`] for one value type.
fn trained_of<T>(
    py: Python<'_>,
    ids: &PyBuffer<T>,
    ids_offsets: &[i64],
    labels: &PyBuffer<T>,
    label_offsets: &[i64],
    limit: i64,
) -> PyResult<Option<Vec<i64>>>
where
    T: pyo3::buffer::Element + Copy + Into<i64> + Sync,
{
    let ids_m = contiguous(ids, "ids")?;
    let labels_m = contiguous(labels, "labels")?;
    // SAFETY: both buffers are held until this function returns and the buffer protocol keeps
    // their memory in place; they are only read. The GIL is released for the scan: the callers
    // pass buffers of immutable Arrow arrays, which nothing writes.
    let (ids_s, labels_s) = unsafe { (ids_m.as_ref(), labels_m.as_ref()) };
    py.detach(move || {
        plamo_fast_core::pack::check::trained_counts(
            ids_s,
            ids_offsets,
            labels_s,
            label_offsets,
            limit,
        )
    })
    .map_err(to_py)
}
