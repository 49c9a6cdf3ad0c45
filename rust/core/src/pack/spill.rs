//! pack's label spill in its compact form. While every label of every spilled document is
//! either its own token or [`IGNORE_INDEX`] (what response-only masking gives, and what nearly
//! every pre-tokenized SFT set holds), one bit per token stands for the label: 1 = the label is
//! the token (a target), 0 = [`IGNORE_INDEX`]. That is a 32nd of the int32 labels' bytes, so
//! the spill written and read back is about half as large.
//!
//! Bit `i` of the file is token `i` of the token spill (least significant bit first within a
//! byte), so a document's bits start where its tokens start. A batch whose labels do not all
//! have this form is refused whole ([`LabelMaskWriter::append`] returns false, nothing
//! written); the caller then turns the bits written so far back into int32 labels
//! ([`labels_from_mask`]) and spills labels as values from there on.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fileio::read_exact_at;
use crate::pack::mask::IGNORE_INDEX;

/// Appends label bits to a mask file.
pub struct LabelMaskWriter {
    path: PathBuf,
    file: BufWriter<File>,
    /// Bits of the byte not yet written (the low `pending` bits of `carry`).
    carry: u8,
    pending: u32,
    bits: u64,
}

impl LabelMaskWriter {
    /// Creates (or truncates) the mask file at `path`.
    pub fn create(path: &Path) -> Result<Self> {
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            file: BufWriter::with_capacity(1 << 16, file),
            carry: 0,
            pending: 0,
            bits: 0,
        })
    }

    /// The bits appended so far (one per token).
    pub fn bits(&self) -> u64 {
        self.bits
    }

    /// Appends one bit per token of `ids` (`labels` as long): true when written; false, with
    /// nothing written, when a label is neither its token nor [`IGNORE_INDEX`].
    pub fn append(&mut self, ids: &[i32], labels: &[i32]) -> Result<bool> {
        if ids.len() != labels.len() {
            return Err(Error::InvalidArgument(format!(
                "{} token ids but {} labels",
                ids.len(),
                labels.len()
            )));
        }
        let Some(bytes) = self.encode(ids, labels) else {
            return Ok(false);
        };
        self.file
            .write_all(&bytes)
            .map_err(|e| Error::io(&self.path, e))?;
        self.bits += ids.len() as u64;
        Ok(true)
    }

    /// The whole bytes that `ids`/`labels` complete (updating the carried partial byte), or
    /// None when a label has another form (then nothing changes).
    fn encode(&mut self, ids: &[i32], labels: &[i32]) -> Option<Vec<u8>> {
        let (mut carry, mut pending) = (self.carry, self.pending);
        let mut out = Vec::with_capacity((pending as usize + ids.len()) / 8 + 1);
        // Single bits until the carried byte is whole, then eight tokens a byte.
        let head = ((8 - pending as usize) % 8).min(ids.len());
        for (&id, &label) in ids[..head].iter().zip(&labels[..head]) {
            carry |= (label_bit(id, label)? as u8) << pending;
            pending += 1;
        }
        if pending == 8 {
            out.push(carry);
            (carry, pending) = (0, 0);
        }
        let (ids, labels) = (&ids[head..], &labels[head..]);
        let whole = ids.len() / 8 * 8;
        for (id8, label8) in ids[..whole]
            .chunks_exact(8)
            .zip(labels[..whole].chunks_exact(8))
        {
            let (mut byte, mut bad) = (0u8, false);
            for j in 0..8 {
                let target = label8[j] == id8[j];
                bad |= !target & (label8[j] != IGNORE_INDEX);
                byte |= (target as u8) << j;
            }
            if bad {
                return None;
            }
            out.push(byte);
        }
        for (&id, &label) in ids[whole..].iter().zip(&labels[whole..]) {
            carry |= (label_bit(id, label)? as u8) << pending;
            pending += 1;
        }
        (self.carry, self.pending) = (carry, pending);
        Some(out)
    }

    /// Writes the last partial byte and flushes; returns the bits written.
    pub fn finish(mut self) -> Result<u64> {
        if self.pending > 0 {
            let carry = [self.carry];
            self.file
                .write_all(&carry)
                .map_err(|e| Error::io(&self.path, e))?;
        }
        self.file.flush().map_err(|e| Error::io(&self.path, e))?;
        Ok(self.bits)
    }
}

/// A label's bit, or None when it is neither its token nor [`IGNORE_INDEX`].
fn label_bit(id: i32, label: i32) -> Option<bool> {
    if label == id {
        Some(true)
    } else if label == IGNORE_INDEX {
        Some(false)
    } else {
        None
    }
}

/// Fills `labels` from the bits of tokens `start..start + ids.len()` of the mask `file`
/// (`ids`: those tokens): the token where the bit is set, else [`IGNORE_INDEX`].
pub fn read_mask_labels(
    file: &File,
    path: &Path,
    start: usize,
    ids: &[i32],
    labels: &mut [i32],
) -> Result<()> {
    let n = ids.len();
    if n == 0 {
        return Ok(());
    }
    let first = start / 8;
    let mut bytes = vec![0u8; (start + n).div_ceil(8) - first];
    read_exact_at(file, &mut bytes, first as u64).map_err(|e| Error::io(path, e))?;
    // Bit `shift + i` of `bytes` is token i's: single bits up to a byte boundary, then whole
    // bytes of eight tokens.
    let shift = start % 8;
    let head = ((8 - shift) % 8).min(n);
    let label_of = |bit: usize, id: i32| {
        if bytes[bit / 8] >> (bit % 8) & 1 == 1 {
            id
        } else {
            IGNORE_INDEX
        }
    };
    for i in 0..head {
        labels[i] = label_of(shift + i, ids[i]);
    }
    let first_byte = (shift + head) / 8;
    let whole = (n - head) / 8 * 8;
    let (body_ids, body_labels) = (&ids[head..head + whole], &mut labels[head..head + whole]);
    for ((id8, label8), &byte) in body_ids
        .chunks_exact(8)
        .zip(body_labels.chunks_exact_mut(8))
        .zip(&bytes[first_byte..])
    {
        for j in 0..8 {
            label8[j] = if byte >> j & 1 == 1 {
                id8[j]
            } else {
                IGNORE_INDEX
            };
        }
    }
    for i in head + whole..n {
        labels[i] = label_of(shift + i, ids[i]);
    }
    Ok(())
}

/// Writes the int32 labels (little-endian) of the first `values` tokens of the token spill
/// `tokens` and the mask `mask` to `out`, a block at a time.
pub fn labels_from_mask(tokens: &Path, mask: &Path, values: usize, out: &Path) -> Result<()> {
    const BLOCK: usize = 1 << 20; // tokens per block, a multiple of 8
    let open = |path: &Path| File::open(path).map_err(|e| Error::io(path, e));
    let (token_file, mask_file) = (open(tokens)?, open(mask)?);
    let mut writer = BufWriter::new(File::create(out).map_err(|e| Error::io(out, e))?);
    let mut bytes = vec![0u8; BLOCK * 4];
    let (mut ids, mut labels) = (vec![0i32; BLOCK], vec![0i32; BLOCK]);
    let mut start = 0;
    while start < values {
        let n = BLOCK.min(values - start);
        read_exact_at(&token_file, &mut bytes[..n * 4], (start * 4) as u64)
            .map_err(|e| Error::io(tokens, e))?;
        for (id, b) in ids[..n].iter_mut().zip(bytes.chunks_exact(4)) {
            *id = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        read_mask_labels(&mask_file, mask, start, &ids[..n], &mut labels[..n])?;
        for (b, label) in bytes.chunks_exact_mut(4).zip(&labels[..n]) {
            b.copy_from_slice(&label.to_le_bytes());
        }
        writer
            .write_all(&bytes[..n * 4])
            .map_err(|e| Error::io(out, e))?;
        start += n;
    }
    writer.flush().map_err(|e| Error::io(out, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Token `i` and its label: a target, IGNORE_INDEX, or (when `other`) something else.
    fn sample(n: usize, seed: u64) -> (Vec<i32>, Vec<i32>) {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as i32
        };
        let ids: Vec<i32> = (0..n).map(|_| next() % 50_000).collect();
        let labels = ids
            .iter()
            .map(|&id| if next() % 3 == 0 { IGNORE_INDEX } else { id })
            .collect();
        (ids, labels)
    }

    fn bits_of(path: &Path, ids: &[i32]) -> Vec<i32> {
        let file = File::open(path).unwrap();
        let mut labels = vec![0; ids.len()];
        read_mask_labels(&file, path, 0, ids, &mut labels).unwrap();
        labels
    }

    #[test]
    fn appends_of_any_size_read_back_as_the_labels() {
        let dir = tempfile::tempdir().unwrap();
        let (ids, labels) = sample(1000, 7);
        for cuts in [
            vec![1000],
            vec![3, 5, 8, 13, 971],
            vec![1, 1, 7, 9, 982],
            vec![0, 999, 1],
        ] {
            let path = dir.path().join("mask");
            let mut writer = LabelMaskWriter::create(&path).unwrap();
            let mut at = 0;
            for cut in cuts {
                assert!(writer
                    .append(&ids[at..at + cut], &labels[at..at + cut])
                    .unwrap());
                at += cut;
            }
            assert_eq!(writer.finish().unwrap(), 1000);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), 125);
            assert_eq!(bits_of(&path, &ids), labels);
            // Any window reads back on its own (a document starting mid-byte).
            let file = File::open(&path).unwrap();
            for (start, end) in [(3, 4), (5, 21), (8, 16), (997, 1000)] {
                let mut got = vec![0; end - start];
                read_mask_labels(&file, &path, start, &ids[start..end], &mut got).unwrap();
                assert_eq!(got, labels[start..end]);
            }
        }
    }

    #[test]
    fn a_batch_with_another_label_is_refused_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mask");
        let (ids, labels) = sample(300, 3);
        let mut writer = LabelMaskWriter::create(&path).unwrap();
        assert!(writer.append(&ids[..5], &labels[..5]).unwrap());
        for bad in [0usize, 2, 10, 101] {
            let mut other = labels[5..200].to_vec();
            other[bad] = ids[5 + bad] + 1;
            assert!(!writer.append(&ids[5..200], &other).unwrap());
        }
        assert!(writer.append(&ids[5..300], &labels[5..300]).unwrap());
        assert_eq!(writer.finish().unwrap(), 300);
        assert_eq!(bits_of(&path, &ids), labels);
        let mut writer = LabelMaskWriter::create(&path).unwrap();
        assert!(writer.append(&ids[..3], &labels[..2]).is_err());
    }

    #[test]
    fn labels_from_mask_writes_the_values() {
        let dir = tempfile::tempdir().unwrap();
        let (ids, labels) = sample((1 << 20) + 77, 11);
        let tokens = dir.path().join("tokens");
        let bytes: Vec<u8> = ids.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(&tokens, bytes).unwrap();
        let mask = dir.path().join("mask");
        let mut writer = LabelMaskWriter::create(&mask).unwrap();
        assert!(writer.append(&ids, &labels).unwrap());
        writer.finish().unwrap();
        let out = dir.path().join("labels");
        labels_from_mask(&tokens, &mask, ids.len() - 5, &out).unwrap();
        let written: Vec<i32> = std::fs::read(&out)
            .unwrap()
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(written, labels[..ids.len() - 5]);
    }
}
