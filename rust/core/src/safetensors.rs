//! A validating, memory-mapped reader of `.safetensors` files.
//!
//! The header is a security boundary: its length, JSON, dtypes, shapes and offsets are all
//! checked before any tensor byte is touched, so a hostile file is refused with a message
//! naming the file, never read out of bounds.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::dtype::Dtype;
use crate::error::{Error, Result};

/// Headers larger than this are refused (the safetensors library uses the same limit).
pub const MAX_HEADER_LEN: u64 = 100_000_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// Byte range inside the data section (after the 8-byte length and the header).
    pub begin: usize,
    pub end: usize,
}

impl TensorInfo {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn nbytes(&self) -> usize {
        self.end - self.begin
    }
}

/// The parsed header: tensors sorted by their position in the data section.
#[derive(Clone, Debug)]
pub struct Header {
    pub data_start: usize,
    pub tensors: Vec<TensorInfo>,
    pub metadata: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: (u64, u64),
}

/// JSON object entries in file order; duplicate keys are an error instead of "last one wins".
struct Entries(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Entries, A::Error> {
                let mut entries: Vec<(String, serde_json::Value)> = Vec::new();
                let mut seen = std::collections::HashSet::new();
                while let Some((key, value)) = map.next_entry::<String, serde_json::Value>()? {
                    if !seen.insert(key.clone()) {
                        return Err(de::Error::custom(format!("duplicate key {key:?}")));
                    }
                    entries.push((key, value));
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}

/// Parses and validates the header of a safetensors file whose whole content is `bytes`.
pub fn parse_header(path: &Path, bytes: &[u8]) -> Result<Header> {
    let bad = |message: String| Error::invalid_file(path, message);
    let file_len = bytes.len() as u64;
    if file_len < 8 {
        return Err(bad(format!(
            "not a safetensors file: {file_len} bytes, shorter than the 8-byte header length"
        )));
    }
    let header_len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    if header_len > MAX_HEADER_LEN {
        return Err(bad(format!(
            "safetensors header length {header_len} exceeds the {MAX_HEADER_LEN}-byte limit"
        )));
    }
    if 8 + header_len > file_len {
        return Err(bad(format!(
            "safetensors header length {header_len} goes beyond the end of the file ({file_len} bytes)"
        )));
    }
    let data_start = 8 + header_len as usize;
    let header_bytes = &bytes[8..data_start];
    let text = std::str::from_utf8(header_bytes)
        .map_err(|e| bad(format!("safetensors header is not UTF-8: {e}")))?;
    let Entries(entries) = serde_json::from_str(text.trim_end_matches(' ')).map_err(|e| {
        bad(format!(
            "safetensors header is not a valid JSON object: {e}"
        ))
    })?;

    let data_len = bytes.len() - data_start;
    let mut metadata = None;
    let mut tensors = Vec::with_capacity(entries.len());
    for (name, value) in entries {
        if name == "__metadata__" {
            let map: BTreeMap<String, String> = serde_json::from_value(value)
                .map_err(|e| bad(format!("__metadata__ must map strings to strings: {e}")))?;
            metadata = Some(map);
            continue;
        }
        let raw: RawEntry = serde_json::from_value(value)
            .map_err(|e| bad(format!("tensor {name:?}: malformed header entry: {e}")))?;
        let dtype = Dtype::parse(&raw.dtype)
            .ok_or_else(|| bad(format!("tensor {name:?}: unknown dtype {:?}", raw.dtype)))?;
        let (begin, end) = raw.data_offsets;
        if begin > end || end > data_len as u64 {
            return Err(bad(format!(
                "tensor {name:?}: data_offsets [{begin}, {end}] out of bounds of the {data_len}-byte data section"
            )));
        }
        let numel = raw
            .shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| bad(format!("tensor {name:?}: shape {:?} overflows", raw.shape)))?;
        let expected = numel.checked_mul(dtype.size() as u64);
        if expected != Some(end - begin) {
            return Err(bad(format!(
                "tensor {name:?}: dtype {} and shape {:?} need {} bytes but data_offsets give {}",
                dtype.name(),
                raw.shape,
                expected.map_or_else(|| "too many".to_string(), |n| n.to_string()),
                end - begin
            )));
        }
        tensors.push(TensorInfo {
            name,
            dtype,
            shape: raw.shape.iter().map(|&d| d as usize).collect(),
            begin: begin as usize,
            end: end as usize,
        });
    }

    // Like the safetensors library: tensors tile the data section exactly, with no overlap or gap.
    tensors.sort_by_key(|t| (t.begin, t.end));
    let mut cursor = 0usize;
    let mut previous: Option<&TensorInfo> = None;
    for tensor in &tensors {
        if tensor.begin < cursor {
            let other = previous.map_or("", |p| p.name.as_str());
            return Err(bad(format!(
                "tensor {:?} overlaps tensor {other:?} (data_offsets start at {} before {cursor})",
                tensor.name, tensor.begin
            )));
        }
        if tensor.begin > cursor {
            return Err(bad(format!(
                "unused bytes {cursor}..{} in the data section before tensor {:?}",
                tensor.begin, tensor.name
            )));
        }
        cursor = tensor.end;
        previous = Some(tensor);
    }
    if cursor != data_len {
        return Err(bad(format!(
            "the data section has {data_len} bytes but its tensors cover {cursor}"
        )));
    }
    Ok(Header {
        data_start,
        tensors,
        metadata,
    })
}

/// An open, validated, memory-mapped safetensors file.
pub struct SafetensorsFile {
    pub path: PathBuf,
    pub header: Header,
    mmap: Option<Mmap>,
}

impl SafetensorsFile {
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len == 0 {
            parse_header(path, &[])?;
        }
        // SAFETY: the mapping is read-only; like every mmap reader we rely on the file not being
        // truncated by another process while it is open.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let header = parse_header(path, &mmap)?;
        #[cfg(unix)]
        let _ = mmap.advise(memmap2::Advice::Sequential);
        Ok(SafetensorsFile {
            path: path.to_path_buf(),
            header,
            mmap: Some(mmap),
        })
    }

    fn bytes(&self) -> &[u8] {
        self.mmap.as_deref().unwrap_or(&[])
    }

    /// The raw little-endian bytes of a tensor of this file.
    pub fn tensor_bytes(&self, tensor: &TensorInfo) -> &[u8] {
        let start = self.header.data_start;
        &self.bytes()[start + tensor.begin..start + tensor.end]
    }

    /// Drops the mapped pages behind `range` (a sub-slice of [`Self::tensor_bytes`]) from this
    /// process's resident set. The data stays in the page cache; a later read faults it back in.
    /// Unix only (`madvise`); elsewhere a no-op, and the system trims the working set itself.
    pub fn release(&self, range: &[u8]) {
        #[cfg(not(unix))]
        let _ = range;
        #[cfg(unix)]
        self.release_pages(range);
    }

    #[cfg(unix)]
    fn release_pages(&self, range: &[u8]) {
        let Some(mmap) = &self.mmap else { return };
        let base = mmap.as_ptr() as usize;
        let start = range.as_ptr() as usize - base;
        if range.is_empty() || start + range.len() > mmap.len() {
            return;
        }
        // SAFETY: the mapping is private and read-only; dropping its pages only forces a re-read
        // from the file, which is what any reader of a page another thread released gets.
        let _ = unsafe {
            mmap.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, range.len())
        };
    }
}
