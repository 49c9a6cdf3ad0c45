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
