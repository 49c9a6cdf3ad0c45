//! Repetition and definition levels of list rows, in Parquet's RLE / bit-packing hybrid.
//!
//! A list column `optional group (LIST) { repeated group list { optional T element } }` has
//! max repetition level 1 and max definition level 3. A row of n > 0 values gives the
//! repetition levels 0, 1, ..., 1 (n in all) and n definition levels 3; an empty row gives one
//! level of each, 0 and 1 (the list is defined and holds nothing). No row is null.

/// Definition level of a present value, and of an empty list.
pub(crate) const DEF_VALUE: u8 = 3;
pub(crate) const DEF_EMPTY: u8 = 1;
/// Bits per level: max repetition level 1, max definition level 3.
const REP_BITS: u8 = 1;
const DEF_BITS: u8 = 2;
/// Values of one bit-packed run at most: 63 groups of 8, so that its header is one byte (as
/// parquet-cpp writes).
const MAX_PACKED: usize = 63 * 8;
/// Runs of at least this many equal values are run-length encoded, shorter ones bit-packed.
const MIN_RLE_RUN: usize = 8;

/// The RLE / bit-packing hybrid encoder of levels below 256, fed run by run.
pub(crate) struct RleEncoder {
    bit_width: u8,
    out: Vec<u8>,
    /// The run being accumulated: value and length.
    run: (u8, usize),
    /// Values waiting to be bit-packed (short runs).
    packed: Vec<u8>,
}

impl RleEncoder {
    pub fn new(bit_width: u8) -> Self {
        debug_assert!((1..=8).contains(&bit_width));
        RleEncoder {
            bit_width,
            out: Vec::new(),
            run: (0, 0),
            packed: Vec::new(),
        }
    }

    /// Appends `count` copies of `value`.
    pub fn put(&mut self, value: u8, count: usize) {
        debug_assert!(u32::from(value) < 1 << self.bit_width);
        if count == 0 {
            return;
        }
        if self.run.0 == value {
            self.run.1 += count;
        } else {
            self.end_run();
            self.run = (value, count);
        }
    }

    fn end_run(&mut self) {
        let (value, mut count) = std::mem::take(&mut self.run);
        if count == 0 {
            return;
        }
        // Complete the pending bit-packed group of 8 first: a run-length run may only follow
        // whole groups.
        let fill = ((8 - self.packed.len() % 8) % 8).min(count);
        self.push_packed(value, fill);
        count -= fill;
        if count >= MIN_RLE_RUN {
            self.flush_packed();
            self.varint((count as u64) << 1);
            let value_bytes = usize::from(self.bit_width).div_ceil(8);
            self.out.extend_from_slice(&[value][..value_bytes]);
        } else {
            self.push_packed(value, count);
        }
    }

    fn push_packed(&mut self, value: u8, count: usize) {
        for _ in 0..count {
            self.packed.push(value);
            if self.packed.len() == MAX_PACKED {
                self.flush_packed();
            }
        }
    }

    /// Writes the pending values as one bit-packed run (the last group padded with zeros,
    /// which a reader never reads: it decodes as many levels as the page holds).
    fn flush_packed(&mut self) {
        if self.packed.is_empty() {
            return;
        }
        let groups = self.packed.len().div_ceil(8);
        self.packed.resize(groups * 8, 0);
        self.varint(((groups as u64) << 1) | 1);
        let width = usize::from(self.bit_width);
        for group in self.packed.chunks_exact(8) {
            let bits = group
                .iter()
                .enumerate()
                .fold(0u64, |acc, (i, &v)| acc | (u64::from(v) << (i * width)));
            self.out.extend_from_slice(&bits.to_le_bytes()[..width]);
        }
        self.packed.clear();
    }

    fn varint(&mut self, v: u64) {
        super::thrift::uleb128(&mut self.out, v);
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.end_run();
        self.flush_packed();
        self.out
    }
}

/// The levels section of a version-1 data page holding the list rows `offsets` (one more than
/// the rows; row `r` is `offsets[r]..offsets[r + 1]`): the repetition levels, then the
/// definition levels, each prefixed by its byte length (u32, little-endian). Returns the section
/// and the number of levels (the page's `num_values`).
pub(crate) fn list_levels(offsets: &[i64]) -> (Vec<u8>, usize) {
    let mut rep = RleEncoder::new(REP_BITS);
    let mut def = RleEncoder::new(DEF_BITS);
    let mut levels = 0usize;
    for pair in offsets.windows(2) {
        let n = (pair[1] - pair[0]) as usize;
        rep.put(0, 1);
        if n == 0 {
            def.put(DEF_EMPTY, 1);
            levels += 1;
        } else {
            rep.put(1, n - 1);
            def.put(DEF_VALUE, n);
            levels += n;
        }
    }
    let (rep, def) = (rep.finish(), def.finish());
    let mut section = Vec::with_capacity(8 + rep.len() + def.len());
    for part in [rep, def] {
        section.extend_from_slice(&(part.len() as u32).to_le_bytes());
        section.extend_from_slice(&part);
    }
    (section, levels)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reference decoder of the hybrid: the first `count` values of `data`.
    fn decode(data: &[u8], bit_width: u8, count: usize) -> Vec<u8> {
        let mut values = Vec::new();
        let mut at = 0;
        let varint = |at: &mut usize| {
            let (mut v, mut shift) = (0u64, 0);
            loop {
                let b = data[*at];
                *at += 1;
                v |= u64::from(b & 0x7F) << shift;
                shift += 7;
                if b < 0x80 {
                    return v;
                }
            }
        };
        while values.len() < count {
            let header = varint(&mut at);
            if header & 1 == 1 {
                let n = (header >> 1) as usize * 8;
                let width = usize::from(bit_width);
                let bytes = &data[at..at + n * width / 8];
                at += n * width / 8;
                for i in 0..n {
                    let bit = i * width;
                    let word = u16::from(bytes[bit / 8])
                        | u16::from(*bytes.get(bit / 8 + 1).unwrap_or(&0)) << 8;
                    values.push(((word >> (bit % 8)) & ((1 << width) - 1)) as u8);
                }
            } else {
                let n = (header >> 1) as usize;
                values.extend(std::iter::repeat_n(data[at], n));
                at += 1;
            }
        }
        assert_eq!(at, data.len(), "trailing bytes");
        values.truncate(count);
        values
    }

    fn encode(runs: &[(u8, usize)], bit_width: u8) -> Vec<u8> {
        let mut e = RleEncoder::new(bit_width);
        for &(v, n) in runs {
            e.put(v, n);
        }
        e.finish()
    }

    #[test]
    fn long_run_is_run_length_encoded() {
        // 1000 threes at width 2: header 2000 as a varint, then the value byte.
        assert_eq!(encode(&[(3, 600), (3, 400)], 2), [0xD0, 0x0F, 0x03]);
    }

    #[test]
    fn short_runs_are_bit_packed() {
        // 0,1,1,0,1 at width 1: one group (padded), header (1 << 1) | 1, bits LSB first.
        assert_eq!(
            encode(&[(0, 1), (1, 2), (0, 1), (1, 1)], 1),
            [0x03, 0b10110]
        );
    }

    #[test]
    fn group_is_completed_before_a_run() {
        // 0 then twenty 1s: the group takes 0 and seven 1s, the 13 left are a run.
        let bytes = encode(&[(0, 1), (1, 20)], 1);
        assert_eq!(bytes, [0x03, 0xFE, 26, 0x01]);
        assert_eq!(decode(&bytes, 1, 21), [[0].as_slice(), &[1; 20]].concat());
    }

    #[test]
    fn random_runs_round_trip() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for width in [1u8, 2, 3, 8] {
            for _ in 0..200 {
                let runs: Vec<(u8, usize)> = (0..next() % 60)
                    .map(|_| {
                        let len = if next() % 4 == 0 {
                            next() % 2000
                        } else {
                            next() % 5
                        };
                        ((next() % (1 << width)) as u8, len as usize)
                    })
                    .collect();
                let expected: Vec<u8> = runs
                    .iter()
                    .flat_map(|&(v, n)| std::iter::repeat_n(v, n))
                    .collect();
                let bytes = encode(&runs, width);
                assert_eq!(decode(&bytes, width, expected.len()), expected);
            }
        }
    }

    #[test]
    fn levels_of_list_rows() {
        // Rows [a, b, c], [], [d]: repetition 0 1 1 0 0, definition 3 3 3 1 3.
        let (section, levels) = list_levels(&[10, 13, 13, 14]);
        assert_eq!(levels, 5);
        let rep_len = u32::from_le_bytes(section[0..4].try_into().unwrap()) as usize;
        let rep = &section[4..4 + rep_len];
        let def_at = 4 + rep_len;
        let def_len = u32::from_le_bytes(section[def_at..def_at + 4].try_into().unwrap()) as usize;
        let def = &section[def_at + 4..];
        assert_eq!(def.len(), def_len);
        assert_eq!(decode(rep, 1, 5), [0, 1, 1, 0, 0]);
        assert_eq!(decode(def, 2, 5), [3, 3, 3, 1, 3]);
    }

    #[test]
    fn levels_of_single_value_rows_are_one_run_each() {
        let offsets: Vec<i64> = (0..=100_000).collect();
        let (section, levels) = list_levels(&offsets);
        assert_eq!(levels, 100_000);
        // Each: a 4-byte length, a 3-byte varint header (200,000) and one value byte.
        assert_eq!(section.len(), 2 * (4 + 3 + 1));
    }
}
