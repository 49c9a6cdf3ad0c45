//! The file writer: row groups of list columns in, data pages and a footer out.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;

use super::levels::list_levels;
use super::metadata::{data_page_header, file_metadata, ChunkMeta, RowGroupMeta};
use super::{ColumnSpec, Compression, Physical};
use crate::error::{Error, Result};
use crate::fileio::start_writeback;

const MAGIC: &[u8; 4] = b"PAR1";
/// Page sizes and value counts are i32 in the page header.
const PAGE_LIMIT: usize = i32::MAX as usize;
const CREATED_BY: &str = concat!("plamo-fast version ", env!("CARGO_PKG_VERSION"));
/// Pages encoded at once per thread (in parallel, then written in order): bounds the memory
/// of a large row group to a few pages per thread.
const PAGES_PER_THREAD: usize = 4;
/// Written bytes handed to the disk (asynchronous writeback, Linux) each time this many more
/// are written, so that the fsync of `close` finds little left to write.
const WRITEBACK_BYTES: u64 = 8 << 20;

/// The flat values of a list column.
#[derive(Clone, Copy, Debug)]
pub enum ListValues<'a> {
    Int32(&'a [i32]),
    Int64(&'a [i64]),
}

impl<'a> ListValues<'a> {
    fn len(&self) -> usize {
        match self {
            ListValues::Int32(v) => v.len(),
            ListValues::Int64(v) => v.len(),
        }
    }

    fn physical(&self) -> Physical {
        match self {
            ListValues::Int32(_) => Physical::Int32,
            ListValues::Int64(_) => Physical::Int64,
        }
    }

    /// The PLAIN encoding of `values[range]`: little-endian bytes, borrowed where the host is
    /// little-endian.
    fn plain(&self, range: Range<usize>) -> Cow<'a, [u8]> {
        match *self {
            ListValues::Int32(v) => plain_bytes(&v[range], |x| x.to_le_bytes()),
            ListValues::Int64(v) => plain_bytes(&v[range], |x| x.to_le_bytes()),
        }
    }
}

/// `values` as little-endian bytes; `T` is i32 or i64 (no padding bytes).
fn plain_bytes<T, const N: usize>(values: &[T], le: impl Fn(&T) -> [u8; N]) -> Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        // SAFETY: `T` is a primitive integer (the two callers above): every byte of `values`
        // is initialized, u8 has alignment 1, and the slice covers exactly their memory,
        // borrowed for as long as `values`.
        Cow::Borrowed(unsafe {
            std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values))
        })
    } else {
        Cow::Owned(values.iter().flat_map(le).collect())
    }
}

/// One column of a row group: row `r` is `values[offsets[r]..offsets[r + 1]]` (offsets
/// non-decreasing, within `values`; one more offset than rows).
#[derive(Clone, Copy, Debug)]
pub struct ListColumn<'a> {
    pub offsets: &'a [i64],
    pub values: ListValues<'a>,
}

/// A Parquet file being written: [`ListWriter::create`], row groups, then
/// [`ListWriter::close`] (without it the file has no footer and is not Parquet).
pub struct ListWriter {
    path: PathBuf,
    file: BufWriter<File>,
    /// Bytes written so far (the offset of the next byte).
    position: u64,
    /// Bytes whose writeback has been started.
    written_back: u64,
    columns: Vec<ColumnSpec>,
    compression: Compression,
    page_bytes: usize,
    key_values: Vec<(String, String)>,
    row_groups: Vec<RowGroupMeta>,
    /// Buffers of the pages being compressed and of the compressed pages, reused.
    inputs: Pool,
    outputs: Pool,
}

/// Page-sized buffers kept for reuse: a fresh megabyte for each page costs a page fault per
/// 4 KiB (the allocator maps and unmaps such blocks), which took more time than snappy here.
#[derive(Default)]
struct Pool(Mutex<Vec<Vec<u8>>>);

impl Pool {
    fn take(&self) -> Vec<u8> {
        self.0.lock().expect("pool").pop().unwrap_or_default()
    }

    fn give(&self, buffer: Vec<u8>) {
        self.0.lock().expect("pool").push(buffer);
    }
}

/// A data page ready to write: its header, then its body.
struct Page<'a> {
    header: Vec<u8>,
    levels: usize,
    uncompressed: usize,
    body: Body<'a>,
}

enum Body<'a> {
    /// A buffer from the output pool and the length of the page in it.
    Compressed(Vec<u8>, usize),
    /// Uncompressed: the levels section, then the values (borrowed, not copied).
    Plain(Vec<u8>, Cow<'a, [u8]>),
}

impl Body<'_> {
    fn len(&self) -> usize {
        match self {
            Body::Compressed(_, len) => *len,
            Body::Plain(levels, values) => levels.len() + values.len(),
        }
    }
}

impl ListWriter {
    /// Creates (or truncates) `path` with these columns; `key_values` go to the footer.
    /// Pages hold about `page_bytes` of values (whole rows: one longer row makes a longer page).
    pub fn create(
        path: &Path,
        columns: Vec<ColumnSpec>,
        compression: Compression,
        key_values: Vec<(String, String)>,
        page_bytes: usize,
    ) -> Result<Self> {
        let refuse = |what: String| {
            Err(Error::InvalidArgument(format!(
                "{}: {what}",
                path.display()
            )))
        };
        if columns.is_empty() {
            return refuse("a Parquet file needs at least one column".into());
        }
        if page_bytes == 0 {
            return refuse("page_bytes must be positive".into());
        }
        for (i, c) in columns.iter().enumerate() {
            if columns[..i].iter().any(|o| o.name == c.name) {
                return refuse(format!("column {:?} given twice", c.name));
            }
        }
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        let mut writer = ListWriter {
            path: path.to_path_buf(),
            file: BufWriter::with_capacity(1 << 16, file),
            position: 0,
            written_back: 0,
            columns,
            compression,
            page_bytes,
            key_values,
            row_groups: Vec::new(),
            inputs: Pool::default(),
            outputs: Pool::default(),
        };
        writer.write(MAGIC)?;
        Ok(writer)
    }

    /// Writes one row group (one list per column, in the file's column order). A row group
    /// of no rows writes nothing.
    pub fn write_row_group(&mut self, columns: &[ListColumn<'_>]) -> Result<()> {
        let rows = self.check(columns)?;
        if rows == 0 {
            return Ok(());
        }
        let tasks: Vec<(usize, Range<usize>)> = columns
            .iter()
            .enumerate()
            .flat_map(|(c, col)| {
                let width = col.values.physical().width();
                page_rows(col.offsets, width, self.page_bytes)
                    .into_iter()
                    .map(move |r| (c, r))
            })
            .collect();
        let window = (rayon::current_num_threads() * PAGES_PER_THREAD).max(1);
        let mut chunks: Vec<ChunkMeta> = Vec::with_capacity(columns.len());
        for batch in tasks.chunks(window) {
            let pages = batch
                .par_iter()
                .map(|(c, rows)| self.encode_page(*c, &columns[*c], rows.clone()))
                .collect::<Result<Vec<Page>>>()?;
            for ((c, _), page) in batch.iter().zip(pages) {
                if chunks.len() == *c {
                    chunks.push(ChunkMeta {
                        num_values: 0,
                        uncompressed: 0,
                        compressed: 0,
                        data_page_offset: self.position as i64,
                    });
                }
                let chunk = &mut chunks[*c];
                let header = page.header.len() as i64;
                chunk.num_values += page.levels as i64;
                chunk.uncompressed += header + page.uncompressed as i64;
                chunk.compressed += header + page.body.len() as i64;
                self.write(&page.header)?;
                match page.body {
                    Body::Compressed(buffer, len) => {
                        self.write(&buffer[..len])?;
                        self.outputs.give(buffer);
                    }
                    Body::Plain(levels, values) => {
                        self.write(&levels)?;
                        self.write(&values)?;
                    }
                }
            }
        }
        self.row_groups.push(RowGroupMeta {
            columns: chunks,
            num_rows: rows as i64,
        });
        if self.position - self.written_back >= WRITEBACK_BYTES {
            self.file.flush().map_err(|e| Error::io(&self.path, e))?;
            let len = (self.position - self.written_back) as usize;
            start_writeback(self.file.get_ref(), self.written_back, len);
            self.written_back = self.position;
        }
        Ok(())
    }

    /// Writes the footer, flushes and syncs the file to disk.
    pub fn close(mut self) -> Result<()> {
        let footer = file_metadata(
            &self.columns,
            self.compression,
            &self.row_groups,
            &self.key_values,
            CREATED_BY,
        );
        self.write(&footer)?;
        self.write(&(footer.len() as u32).to_le_bytes())?;
        self.write(MAGIC)?;
        let path = self.path.clone();
        let file = self
            .file
            .into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&path, e))
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all(bytes)
            .map_err(|e| Error::io(&self.path, e))?;
        self.position += bytes.len() as u64;
        Ok(())
    }

    /// The row count of `columns` after checking them against the file's columns.
    fn check(&self, columns: &[ListColumn<'_>]) -> Result<usize> {
        let refuse = |what: String| {
            Err(Error::InvalidArgument(format!(
                "{}: {what}",
                self.path.display()
            )))
        };
        if columns.len() != self.columns.len() {
            return refuse(format!(
                "{} columns given for a file of {}",
                columns.len(),
                self.columns.len()
            ));
        }
        let mut rows = None;
        for (spec, col) in self.columns.iter().zip(columns) {
            let name = &spec.name;
            if col.values.physical() != spec.physical {
                return refuse(format!(
                    "column {name}: {:?} values given, the column holds {:?}",
                    col.values.physical(),
                    spec.physical
                ));
            }
            let Some(n) = col.offsets.len().checked_sub(1) else {
                return refuse(format!("column {name}: no offsets (n rows have n + 1)"));
            };
            if let Some((first, count)) = rows.filter(|&(_, count)| count != n) {
                return refuse(format!(
                    "column {name} has {n} rows, column {first} {count}"
                ));
            }
            rows.get_or_insert((name, n));
            let in_range = col.offsets[0] >= 0
                && col.offsets.windows(2).all(|p| p[0] <= p[1])
                && col.offsets[n] as u64 <= col.values.len() as u64;
            if !in_range {
                return refuse(format!(
                    "column {name}: offsets must be non-decreasing, within 0..={}",
                    col.values.len()
                ));
            }
        }
        Ok(rows.map_or(0, |(_, n)| n))
    }

    /// Encodes (and compresses) the data page of rows `rows` of column `c`.
    fn encode_page<'a>(
        &self,
        c: usize,
        column: &ListColumn<'a>,
        rows: Range<usize>,
    ) -> Result<Page<'a>> {
        let offsets = &column.offsets[rows.start..=rows.end];
        let (levels_section, levels) = list_levels(offsets);
        let values = column
            .values
            .plain(offsets[0] as usize..offsets[offsets.len() - 1] as usize);
        let uncompressed = levels_section.len() + values.len();
        let too_large = || {
            Error::InvalidArgument(format!(
                "{}: column {}: rows {}..{} of the row group take {} bytes in one page, more \
                 than a Parquet page holds (2 GiB)",
                self.path.display(),
                self.columns[c].name,
                rows.start,
                rows.end,
                uncompressed
            ))
        };
        if uncompressed > PAGE_LIMIT || levels > PAGE_LIMIT {
            return Err(too_large());
        }
        let body = match self.compression {
            Compression::Uncompressed => Body::Plain(levels_section, values),
            Compression::Snappy => {
                let mut input = self.inputs.take();
                input.clear();
                input.extend_from_slice(&levels_section);
                input.extend_from_slice(&values);
                // Output buffers keep their length: zeroed once, when first grown.
                let mut output = self.outputs.take();
                let bound = snap::raw::max_compress_len(input.len());
                if output.len() < bound {
                    output.resize(bound, 0);
                }
                let compressed = snap::raw::Encoder::new().compress(&input, &mut output);
                self.inputs.give(input);
                Body::Compressed(output, compressed.map_err(|_| too_large())?)
            }
        };
        if body.len() > PAGE_LIMIT {
            return Err(too_large());
        }
        let header = data_page_header(levels as i32, uncompressed as i32, body.len() as i32);
        Ok(Page {
            header,
            levels,
            uncompressed,
            body,
        })
    }
}

/// Splits rows into pages of about `page_bytes` each (values, plus a byte per row for its
/// levels), at row boundaries: a page ends before the row that would take it past the size,
/// so only a page of a single row is larger.
fn page_rows(offsets: &[i64], width: usize, page_bytes: usize) -> Vec<Range<usize>> {
    let rows = offsets.len() - 1;
    let mut pages = Vec::new();
    let mut start = 0;
    for r in 0..rows {
        let cost = (offsets[r + 1] - offsets[start]) as usize * width + (r + 1 - start);
        if r > start && cost > page_bytes {
            pages.push(start..r);
            start = r;
        }
    }
    if start < rows {
        pages.push(start..rows);
    }
    pages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_end_at_row_boundaries() {
        // Rows of 10, 10, 30, 5 and 0 int32 values, pages of about 64 bytes.
        let offsets = [0, 10, 20, 50, 55, 55];
        assert_eq!(page_rows(&offsets, 4, 64), vec![0..1, 1..2, 2..3, 3..5]);
        assert_eq!(page_rows(&offsets, 4, 1 << 20), vec![0..5]);
        assert_eq!(page_rows(&[0], 4, 64), Vec::<Range<usize>>::new());
    }

    fn column<'a>(offsets: &'a [i64], values: &'a [i32]) -> ListColumn<'a> {
        ListColumn {
            offsets,
            values: ListValues::Int32(values),
        }
    }

    fn spec(name: &str) -> ColumnSpec {
        ColumnSpec {
            name: name.into(),
            physical: Physical::Int32,
        }
    }

    #[test]
    fn bad_columns_are_refused_with_the_file_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.parquet");
        let mut w = ListWriter::create(
            &path,
            vec![spec("a"), spec("b")],
            Compression::Snappy,
            vec![],
            1 << 20,
        )
        .unwrap();
        let values = [1, 2, 3];
        let cases: [(&[ListColumn], &str); 4] = [
            (
                &[column(&[0, 3], &values)],
                "1 columns given for a file of 2",
            ),
            (
                &[column(&[0, 3], &values), column(&[0, 1, 3], &values)],
                "column b has 2 rows, column a 1",
            ),
            (
                &[column(&[0, 4], &values), column(&[0, 3], &values)],
                "column a: offsets must be non-decreasing, within 0..=3",
            ),
            (
                &[column(&[0, 3], &values), column(&[2, 1], &values)],
                "column b: offsets must be non-decreasing",
            ),
        ];
        for (columns, message) in cases {
            let err = w.write_row_group(columns).unwrap_err().to_string();
            assert!(err.contains(message), "{err}");
            assert!(err.contains("x.parquet"), "{err}");
        }
        let wide = [0i64, 1];
        let err = w
            .write_row_group(&[
                column(&[0, 3], &values),
                ListColumn {
                    offsets: &[0, 2],
                    values: ListValues::Int64(&wide),
                },
            ])
            .unwrap_err();
        assert!(
            err.to_string().contains("column b: Int64 values given"),
            "{err}"
        );
    }

    #[test]
    fn unwritable_path_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("x.parquet");
        let err = ListWriter::create(&path, vec![spec("a")], Compression::Snappy, vec![], 1)
            .err()
            .unwrap();
        assert!(matches!(err, Error::Io { .. }));
        assert!(err.to_string().contains("missing/x.parquet"), "{err}");
    }

    #[test]
    fn file_is_framed_by_magic_and_footer_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.parquet");
        for compression in [Compression::Snappy, Compression::Uncompressed] {
            let mut w =
                ListWriter::create(&path, vec![spec("a")], compression, vec![], 16).unwrap();
            let values: Vec<i32> = (0..100).collect();
            let offsets: Vec<i64> = (0..=10).map(|r| r * 10).collect();
            w.write_row_group(&[column(&offsets, &values)]).unwrap();
            w.close().unwrap();
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(&bytes[..4], MAGIC);
            assert_eq!(&bytes[bytes.len() - 4..], MAGIC);
            let footer =
                u32::from_le_bytes(bytes[bytes.len() - 8..bytes.len() - 4].try_into().unwrap());
            assert!((footer as usize) < bytes.len() - 12);
            if compression == Compression::Uncompressed {
                // The values are stored as they are: the last row's bytes are in the file.
                let last_row: Vec<u8> = (90..100i32).flat_map(|x| x.to_le_bytes()).collect();
                assert!(bytes.windows(40).any(|w| w == last_row));
            }
        }
    }
}
