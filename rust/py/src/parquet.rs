//! Bindings of the Parquet writer of integer-list columns.

use std::path::PathBuf;

use plamo_fast_core::parquet::{
    ColumnSpec, Compression, ListColumn, ListValues, ListWriter, Physical, DEFAULT_PAGE_BYTES,
};
use pyo3::buffer::{Element, PyBuffer};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors::to_py;

/// A Parquet file of non-null `list<int32>` / `list<int64>` columns being written (see the core
/// `parquet` module): `write_row_group` for each row group, then `close` (which writes the
/// footer and syncs the file).
#[pyclass(module = "plamo_fast._native")]
pub struct ParquetListWriter {
    inner: Option<ListWriter>,
    physical: Vec<Physical>,
}

/// A column's buffers, held (so that their memory stays in place) while the row group is
/// written.
enum Held {
    Int32(PyBuffer<i64>, PyBuffer<i32>),
    Int64(PyBuffer<i64>, PyBuffer<i64>),
}

fn slice<'a, T: Element>(buffer: &'a PyBuffer<T>, what: &str) -> PyResult<&'a [T]> {
    let memory = buffer
        .as_slice_ptr()
        .ok_or_else(|| PyValueError::new_err(format!("{what} must be C-contiguous")))?;
    // SAFETY: the buffer protocol keeps this memory alive and in place while `buffer` lives,
    // which outlives the slice. The callers pass buffers of immutable Arrow arrays (or numpy
    // arrays they do not write during the call), so nothing writes them while they are read,
    // also while the GIL is released.
    Ok(unsafe { memory.as_ref() })
}

impl Held {
    fn column(&self, name: &str) -> PyResult<ListColumn<'_>> {
        let offsets_of = |o| slice(o, &format!("{name}: offsets"));
        let values_what = format!("{name}: values");
        Ok(match self {
            Held::Int32(o, v) => ListColumn {
                offsets: offsets_of(o)?,
                values: ListValues::Int32(slice(v, &values_what)?),
            },
            Held::Int64(o, v) => ListColumn {
                offsets: offsets_of(o)?,
                values: ListValues::Int64(slice(v, &values_what)?),
            },
        })
    }
}

#[pymethods]
impl ParquetListWriter {
    /// Creates (or truncates) `path`. `columns` are `(name, "int32" | "int64")` pairs;
    /// `compression` is "snappy" or "none"; `key_value_metadata` goes to the footer (pyarrow
    /// reads its `ARROW:schema` entry); pages hold about `page_bytes` of values.
    #[new]
    #[pyo3(signature = (path, columns, *, compression = "snappy", key_value_metadata = Vec::new(), page_bytes = DEFAULT_PAGE_BYTES))]
    fn new(
        path: PathBuf,
        columns: Vec<(String, String)>,
        compression: &str,
        key_value_metadata: Vec<(String, String)>,
        page_bytes: usize,
    ) -> PyResult<Self> {
        let compression = match compression {
            "snappy" => Compression::Snappy,
            "none" => Compression::Uncompressed,
            other => {
                return Err(PyValueError::new_err(format!(
                    "compression must be 'snappy' or 'none', got {other:?}"
                )))
            }
        };
        let specs = columns
            .into_iter()
            .map(|(name, kind)| {
                let physical = match kind.as_str() {
                    "int32" => Physical::Int32,
                    "int64" => Physical::Int64,
                    _ => {
                        return Err(PyValueError::new_err(format!(
                            "column {name}: type must be 'int32' or 'int64', got {kind:?}"
                        )))
                    }
                };
                Ok(ColumnSpec { name, physical })
            })
            .collect::<PyResult<Vec<_>>>()?;
        let physical = specs.iter().map(|s| s.physical).collect();
        let inner = ListWriter::create(&path, specs, compression, key_value_metadata, page_bytes)
            .map_err(to_py)?;
        Ok(ParquetListWriter {
            inner: Some(inner),
            physical,
        })
    }

    /// Writes one row group: for each column, in order, `(offsets, values)`: int64 offsets
    /// (one more than the rows) into the flat values (int32 or int64, as the column was
    /// declared), both C-contiguous and left unchanged during the call. Encodes with the GIL
    /// released, pages in parallel.
    fn write_row_group(
        &mut self,
        py: Python<'_>,
        columns: Vec<(Bound<'_, PyAny>, Bound<'_, PyAny>)>,
    ) -> PyResult<()> {
        if self.inner.is_none() {
            return Err(PyValueError::new_err("the Parquet writer is closed"));
        }
        if columns.len() != self.physical.len() {
            return Err(PyValueError::new_err(format!(
                "{} columns given for a file of {}",
                columns.len(),
                self.physical.len()
            )));
        }
        let held = columns
            .iter()
            .zip(&self.physical)
            .enumerate()
            .map(|(i, ((offsets, values), physical))| {
                let wrong = |what: &str| {
                    let message = format!("column {i}: {what}");
                    move |_| PyValueError::new_err(message)
                };
                let offsets =
                    PyBuffer::<i64>::get(offsets).map_err(wrong("offsets must be int64"))?;
                Ok(match physical {
                    Physical::Int32 => Held::Int32(
                        offsets,
                        PyBuffer::get(values).map_err(wrong("values must be int32"))?,
                    ),
                    Physical::Int64 => Held::Int64(
                        offsets,
                        PyBuffer::get(values).map_err(wrong("values must be int64"))?,
                    ),
                })
            })
            .collect::<PyResult<Vec<Held>>>()?;
        let views = held
            .iter()
            .enumerate()
            .map(|(i, h)| h.column(&format!("column {i}")))
            .collect::<PyResult<Vec<_>>>()?;
        let writer = self.inner.as_mut().expect("checked above");
        py.detach(|| writer.write_row_group(&views)).map_err(to_py)
    }

    /// Writes the footer, flushes and syncs the file; later calls do nothing.
    fn close(&mut self, py: Python<'_>) -> PyResult<()> {
        match self.inner.take() {
            Some(writer) => py.detach(|| writer.close()).map_err(to_py),
            None => Ok(()),
        }
    }
}
