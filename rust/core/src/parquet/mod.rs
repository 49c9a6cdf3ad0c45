//! A minimal Parquet writer for columns of non-null integer lists (`list<int32>`,
//! `list<int64>`), the output of `plamo-fast pack`.
//!
//! The file is laid out as pyarrow lays out such a table: each column is
//! `optional group NAME (LIST) { repeated group list { optional INT element } }` (max
//! repetition level 1, max definition level 3), stored in version-1 data pages (repetition and
//! definition levels in the RLE / bit-packing hybrid with length prefixes, then PLAIN values)
//! that start and end at row boundaries, snappy-compressed or not, without dictionaries or
//! statistics. Empty lists are written (definition level 1); nulls cannot be. Pages are encoded
//! and compressed in parallel and written in order; writeback to disk starts as the file grows
//! (Linux), and `close` syncs it. The caller passes the key-value metadata (pyarrow's
//! `ARROW:schema`, so that Arrow readers see the schema they would with pyarrow).

mod levels;
mod metadata;
mod thrift;
mod writer;

pub use writer::{ListColumn, ListValues, ListWriter};

/// The physical type of a column's list values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Physical {
    Int32,
    Int64,
}

impl Physical {
    /// Bytes per PLAIN-encoded value.
    pub fn width(self) -> usize {
        match self {
            Physical::Int32 => 4,
            Physical::Int64 => 8,
        }
    }
}

/// The page compression codec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Uncompressed,
    Snappy,
}

/// A column of the file: its name and value type.
#[derive(Clone, Debug)]
pub struct ColumnSpec {
    pub name: String,
    pub physical: Physical,
}

/// Values bytes per data page, about (pages end at row boundaries): pyarrow's default.
pub const DEFAULT_PAGE_BYTES: usize = 1 << 20;
