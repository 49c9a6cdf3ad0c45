//! The Thrift structs of `parquet.thrift` that the writer emits: `PageHeader` (with its
//! `DataPageHeader`) and the footer's `FileMetaData` (schema, row groups, column chunks,
//! key-value metadata, column orders).

use super::thrift::CompactWriter;
use super::{ColumnSpec, Compression, Physical};

// Enum values of parquet.thrift.
const TYPE_INT32: i32 = 1;
const TYPE_INT64: i32 = 2;
const OPTIONAL: i32 = 1;
const REPEATED: i32 = 2;
const CONVERTED_LIST: i32 = 3;
const ENCODING_PLAIN: i32 = 0;
const ENCODING_RLE: i32 = 3;
const PAGE_DATA: i32 = 0;
const CODEC_UNCOMPRESSED: i32 = 0;
const CODEC_SNAPPY: i32 = 1;
/// `FileMetaData.version`, as pyarrow writes it (format 2.x).
const FORMAT_VERSION: i32 = 2;

/// The names of the list levels, as pyarrow writes them by default (compliant nested types).
pub(crate) const LIST_GROUP: &str = "list";
pub(crate) const LIST_ELEMENT: &str = "element";

/// One column chunk as the footer describes it.
pub(crate) struct ChunkMeta {
    /// Levels (values and empty lists) in the chunk.
    pub num_values: i64,
    /// Bytes of the pages, headers included, before and after compression.
    pub uncompressed: i64,
    pub compressed: i64,
    /// Where the chunk's first page (header) starts in the file.
    pub data_page_offset: i64,
}

pub(crate) struct RowGroupMeta {
    pub columns: Vec<ChunkMeta>,
    pub num_rows: i64,
}

/// The header of a version-1 data page of PLAIN values with RLE levels.
pub(crate) fn data_page_header(num_values: i32, uncompressed: i32, compressed: i32) -> Vec<u8> {
    CompactWriter::message(|w| {
        w.i32(1, PAGE_DATA);
        w.i32(2, uncompressed);
        w.i32(3, compressed);
        w.structure(5, |w| {
            w.i32(1, num_values);
            w.i32(2, ENCODING_PLAIN);
            w.i32(3, ENCODING_RLE);
            w.i32(4, ENCODING_RLE);
        });
    })
}

fn physical_type(p: Physical) -> i32 {
    match p {
        Physical::Int32 => TYPE_INT32,
        Physical::Int64 => TYPE_INT64,
    }
}

fn codec(c: Compression) -> i32 {
    match c {
        Compression::Uncompressed => CODEC_UNCOMPRESSED,
        Compression::Snappy => CODEC_SNAPPY,
    }
}

/// The serialized `FileMetaData` of the footer.
pub(crate) fn file_metadata(
    columns: &[ColumnSpec],
    compression: Compression,
    row_groups: &[RowGroupMeta],
    key_values: &[(String, String)],
    created_by: &str,
) -> Vec<u8> {
    let num_rows: i64 = row_groups.iter().map(|g| g.num_rows).sum();
    CompactWriter::message(|w| {
        w.i32(1, FORMAT_VERSION);
        let mut schema: Vec<Element> = vec![Element::Root(columns.len())];
        for c in columns {
            schema.extend([
                Element::List(&c.name),
                Element::Repeated,
                Element::Leaf(c.physical),
            ]);
        }
        w.struct_list(2, &schema, |w, e| e.write(w));
        w.i64(3, num_rows);
        let groups: Vec<(usize, &RowGroupMeta)> = row_groups.iter().enumerate().collect();
        w.struct_list(4, &groups, |w, &(i, g)| {
            row_group(w, g, i, columns, compression)
        });
        if !key_values.is_empty() {
            w.struct_list(5, key_values, |w, (k, v)| {
                w.binary(1, k.as_bytes());
                w.binary(2, v.as_bytes());
            });
        }
        w.binary(6, created_by.as_bytes());
        // TYPE_ORDER (an empty TypeDefinedOrder) for each leaf, as pyarrow writes.
        w.struct_list(7, columns, |w, _| w.structure(1, |_| {}));
    })
}

/// A `SchemaElement` of the flattened schema tree.
enum Element<'a> {
    Root(usize),
    List(&'a str),
    Repeated,
    Leaf(Physical),
}

impl Element<'_> {
    fn write(&self, w: &mut CompactWriter) {
        match *self {
            Element::Root(children) => {
                w.binary(4, b"schema");
                w.i32(5, children as i32);
            }
            Element::List(name) => {
                w.i32(3, OPTIONAL);
                w.binary(4, name.as_bytes());
                w.i32(5, 1);
                w.i32(6, CONVERTED_LIST);
                w.structure(10, |w| w.structure(3, |_| {})); // LogicalType LIST
            }
            Element::Repeated => {
                w.i32(3, REPEATED);
                w.binary(4, LIST_GROUP.as_bytes());
                w.i32(5, 1);
            }
            Element::Leaf(physical) => {
                w.i32(1, physical_type(physical));
                w.i32(3, OPTIONAL);
                w.binary(4, LIST_ELEMENT.as_bytes());
            }
        }
    }
}

fn row_group(
    w: &mut CompactWriter,
    group: &RowGroupMeta,
    index: usize,
    columns: &[ColumnSpec],
    compression: Compression,
) {
    let chunks: Vec<(&ChunkMeta, &ColumnSpec)> = group.columns.iter().zip(columns).collect();
    w.struct_list(1, &chunks, |w, (chunk, spec)| {
        w.i64(2, 0); // file_offset: deprecated, 0 when no ColumnMetaData precedes the footer
        w.structure(3, |w| {
            w.i32(1, physical_type(spec.physical));
            w.i32_list(2, &[ENCODING_PLAIN, ENCODING_RLE]);
            w.string_list(3, &[&spec.name, LIST_GROUP, LIST_ELEMENT]);
            w.i32(4, codec(compression));
            w.i64(5, chunk.num_values);
            w.i64(6, chunk.uncompressed);
            w.i64(7, chunk.compressed);
            w.i64(9, chunk.data_page_offset);
        });
    });
    w.i64(2, group.columns.iter().map(|c| c.uncompressed).sum());
    w.i64(3, group.num_rows);
    if let Some(first) = group.columns.first() {
        w.i64(5, first.data_page_offset);
    }
    w.i64(6, group.columns.iter().map(|c| c.compressed).sum());
    // The ordinal is optional; past i16 it is left out rather than wrapped.
    if let Ok(ordinal) = i16::try_from(index) {
        w.i16(7, ordinal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_header_bytes() {
        // type 0, sizes 100 and 60, data page header {num_values 25, PLAIN, RLE, RLE}.
        assert_eq!(
            data_page_header(25, 100, 60),
            [
                0x15, 0x00, 0x15, 0xC8, 0x01, 0x15, 0x78, 0x2C, 0x15, 0x32, 0x15, 0x00, 0x15, 0x06,
                0x15, 0x06, 0x00, 0x00
            ]
        );
    }
}
