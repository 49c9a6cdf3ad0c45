//! The Thrift compact protocol, write side only, for the field kinds Parquet's metadata uses
//! (`parquet.thrift`: i16/i32/i64, binary/string, struct, list).
//!
//! A struct is its fields in increasing id order, each a header byte (id delta to the previous
//! field of the same struct in the high nibble, when 1..=15, else a zigzag-varint id after it;
//! the kind in the low nibble), then a 0 byte. Integers are zigzag ULEB128 varints.

/// Compact-protocol kinds (the low nibble of a field header, or a list's element kind).
pub(crate) mod kind {
    pub const I16: u8 = 4;
    pub const I32: u8 = 5;
    pub const I64: u8 = 6;
    pub const BINARY: u8 = 8;
    pub const LIST: u8 = 9;
    pub const STRUCT: u8 = 12;
}

/// Serializes one top-level struct: `CompactWriter::message(|w| { w.i32(1, 7); ... })`.
pub(crate) struct CompactWriter {
    out: Vec<u8>,
    /// The id of the last field written in the struct being written.
    last_id: i16,
    /// `last_id` of each enclosing struct.
    enclosing: Vec<i16>,
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Appends `v` as an unsigned LEB128 varint (Thrift's compact integers, Parquet's RLE headers).
pub(crate) fn uleb128(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl CompactWriter {
    /// The bytes of a struct whose fields `body` writes.
    pub fn message(body: impl FnOnce(&mut Self)) -> Vec<u8> {
        let mut w = CompactWriter {
            out: Vec::new(),
            last_id: 0,
            enclosing: Vec::new(),
        };
        body(&mut w);
        w.out.push(0);
        debug_assert!(w.enclosing.is_empty());
        w.out
    }

    fn varint(&mut self, v: u64) {
        uleb128(&mut self.out, v);
    }

    fn field(&mut self, id: i16, kind: u8) {
        debug_assert!(id > self.last_id, "field {id} after {}", self.last_id);
        let delta = i32::from(id) - i32::from(self.last_id);
        if (1..=15).contains(&delta) {
            self.out.push(((delta as u8) << 4) | kind);
        } else {
            self.out.push(kind);
            self.varint(zigzag(i64::from(id)));
        }
        self.last_id = id;
    }

    pub fn i16(&mut self, id: i16, v: i16) {
        self.field(id, kind::I16);
        self.varint(zigzag(i64::from(v)));
    }

    pub fn i32(&mut self, id: i16, v: i32) {
        self.field(id, kind::I32);
        self.varint(zigzag(i64::from(v)));
    }

    pub fn i64(&mut self, id: i16, v: i64) {
        self.field(id, kind::I64);
        self.varint(zigzag(v));
    }

    pub fn binary(&mut self, id: i16, v: &[u8]) {
        self.field(id, kind::BINARY);
        self.bytes(v);
    }

    fn bytes(&mut self, v: &[u8]) {
        self.varint(v.len() as u64);
        self.out.extend_from_slice(v);
    }

    /// A struct field whose own fields `body` writes.
    pub fn structure(&mut self, id: i16, body: impl FnOnce(&mut Self)) {
        self.field(id, kind::STRUCT);
        self.nested(body);
    }

    fn nested(&mut self, body: impl FnOnce(&mut Self)) {
        self.enclosing.push(self.last_id);
        self.last_id = 0;
        body(self);
        self.out.push(0);
        self.last_id = self.enclosing.pop().expect("nested struct");
    }

    fn list_header(&mut self, id: i16, element: u8, len: usize) {
        self.field(id, kind::LIST);
        if len < 15 {
            self.out.push(((len as u8) << 4) | element);
        } else {
            self.out.push(0xF0 | element);
            self.varint(len as u64);
        }
    }

    /// A list of structs, each written by `each`.
    pub fn struct_list<T>(&mut self, id: i16, items: &[T], mut each: impl FnMut(&mut Self, &T)) {
        self.list_header(id, kind::STRUCT, items.len());
        for item in items {
            self.nested(|w| each(w, item));
        }
    }

    /// A list of i32 (or enum) values.
    pub fn i32_list(&mut self, id: i16, items: &[i32]) {
        self.list_header(id, kind::I32, items.len());
        for &v in items {
            self.varint(zigzag(i64::from(v)));
        }
    }

    /// A list of strings.
    pub fn string_list(&mut self, id: i16, items: &[&str]) {
        self.list_header(id, kind::BINARY, items.len());
        for v in items {
            self.bytes(v.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_field_headers() {
        // Deltas 1..=15 fit the header byte; 17 does not (kind byte, then the zigzag id).
        let bytes = CompactWriter::message(|w| {
            w.i32(1, 0);
            w.i32(16, 0);
            w.i32(33, 0);
        });
        assert_eq!(bytes, [0x15, 0x00, 0xF5, 0x00, 0x05, 0x42, 0x00, 0x00]);
    }

    #[test]
    fn zigzag_varints() {
        let bytes = CompactWriter::message(|w| {
            w.i32(1, -1);
            w.i32(2, 1);
            w.i32(3, 300);
            w.i64(4, -129);
            w.i64(5, i64::MAX);
            w.i16(6, -2);
        });
        assert_eq!(
            bytes,
            [
                0x15, 0x01, // -1 -> 1
                0x15, 0x02, // 1 -> 2
                0x15, 0xD8, 0x04, // 300 -> 600
                0x16, 0x81, 0x02, // -129 -> 257
                0x16, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, // MAX
                0x14, 0x03, // -2 -> 3
                0x00,
            ]
        );
    }

    #[test]
    fn strings_and_nested_ids() {
        let bytes = CompactWriter::message(|w| {
            w.i32(1, 0);
            w.structure(2, |w| {
                w.i32(1, 0);
                w.binary(5, b"ab");
            });
            // The delta is taken to field 2 of the outer struct, not to the inner field 5.
            w.binary(3, b"");
        });
        assert_eq!(
            bytes,
            [0x15, 0x00, 0x1C, 0x15, 0x00, 0x48, 0x02, b'a', b'b', 0x00, 0x18, 0x00, 0x00]
        );
    }

    #[test]
    fn lists_short_and_long() {
        let bytes = CompactWriter::message(|w| {
            w.i32_list(1, &[0, 3]);
            w.string_list(2, &["x"]);
            w.struct_list(3, &[7i64], |w, v| w.i64(1, *v));
        });
        assert_eq!(
            bytes,
            [
                0x19, 0x25, 0x00, 0x06, // list<i32> [0, 3]
                0x19, 0x18, 0x01, b'x', // list<binary> ["x"]
                0x19, 0x1C, 0x16, 0x0E, 0x00, // list<struct> [{1: 7}]
                0x00,
            ]
        );
        let long = CompactWriter::message(|w| w.i32_list(1, &[1; 20]));
        assert_eq!(long[..3], [0x19, 0xF5, 20]);
        assert_eq!(long.len(), 3 + 20 + 1);
    }
}
