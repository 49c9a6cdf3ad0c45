//! Output layout: tensors assigned to shards no bigger than a limit, safetensors headers, and
//! the `model.safetensors.index.json` that lists them. Every byte offset is fixed before any
//! data is written, so workers can write their pieces in any order and the files come out the
//! same.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::dtype::Dtype;
use crate::error::{Error, Result};
use crate::fileio::write_all_at;
use crate::model::INDEX_FILE;

/// One tensor of the output model.
#[derive(Clone, Debug)]
pub struct OutputTensor {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
}

impl OutputTensor {
    pub fn nbytes(&self) -> u64 {
        self.shape.iter().product::<usize>() as u64 * self.dtype.size() as u64
    }
}

/// Where one tensor goes: a shard and an absolute byte offset in that shard's file.
#[derive(Clone, Copy, Debug)]
pub struct Placement {
    pub shard: usize,
    pub offset: u64,
}

pub struct ShardPlan {
    pub file_name: String,
    /// The 8-byte header length followed by the space-padded JSON header.
    pub header: Vec<u8>,
    pub size: u64,
    pub tensors: Vec<usize>,
}

pub struct OutputPlan {
    pub shards: Vec<ShardPlan>,
    /// Indexed like the tensor list given to [`plan_output`].
    pub placements: Vec<Placement>,
    pub total_size: u64,
}

/// Assigns tensors, in order, to shards of at most `max_shard_size` data bytes (a tensor larger
/// than the limit gets a shard of its own, as transformers does).
pub fn plan_output(tensors: &[OutputTensor], max_shard_size: u64) -> Result<OutputPlan> {
    if max_shard_size == 0 {
        return Err(Error::InvalidArgument(
            "max shard size must be positive".into(),
        ));
    }
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut current_bytes = 0u64;
    for (i, tensor) in tensors.iter().enumerate() {
        let n = tensor.nbytes();
        match groups.last_mut() {
            Some(group) if current_bytes + n <= max_shard_size => {
                group.push(i);
                current_bytes += n;
            }
            _ => {
                groups.push(vec![i]);
                current_bytes = n;
            }
        }
    }
    let count = groups.len();
    let mut placements = vec![
        Placement {
            shard: 0,
            offset: 0
        };
        tensors.len()
    ];
    let mut shards = Vec::with_capacity(count);
    let mut total_size = 0u64;
    for (shard, group) in groups.into_iter().enumerate() {
        let mut header = Map::new();
        header.insert("__metadata__".into(), json!({ "format": "pt" }));
        let mut cursor = 0u64;
        for &i in &group {
            let t = &tensors[i];
            let end = cursor + t.nbytes();
            header.insert(
                t.name.clone(),
                json!({ "dtype": t.dtype.name(), "shape": t.shape, "data_offsets": [cursor, end] }),
            );
            cursor = end;
        }
        let mut text = serde_json::to_vec(&Value::Object(header)).expect("JSON of plain values");
        // Pad with spaces so the data section starts 8-byte aligned, as the safetensors library does.
        while text.len() % 8 != 0 {
            text.push(b' ');
        }
        let mut bytes = (text.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(&text);
        let data_start = bytes.len() as u64;
        let mut offset = data_start;
        for &i in &group {
            placements[i] = Placement { shard, offset };
            offset += tensors[i].nbytes();
        }
        total_size += cursor;
        shards.push(ShardPlan {
            file_name: format!("model-{:05}-of-{:05}.safetensors", shard + 1, count),
            header: bytes,
            size: data_start + cursor,
            tensors: group,
        });
    }
    Ok(OutputPlan {
        shards,
        placements,
        total_size,
    })
}

/// Creates the shard files in `dir` at their final sizes and writes their headers.
pub fn create_shards(dir: &Path, plan: &OutputPlan) -> Result<Vec<File>> {
    plan.shards
        .iter()
        .map(|shard| {
            let path = dir.join(&shard.file_name);
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            file.set_len(shard.size).map_err(|e| Error::io(&path, e))?;
            write_all_at(&file, &shard.header, 0).map_err(|e| Error::io(&path, e))?;
            Ok(file)
        })
        .collect()
}

/// Writes `model.safetensors.index.json` for the plan.
pub fn write_index(dir: &Path, tensors: &[OutputTensor], plan: &OutputPlan) -> Result<()> {
    let mut weight_map = BTreeMap::new();
    for (i, tensor) in tensors.iter().enumerate() {
        let shard = &plan.shards[plan.placements[i].shard];
        weight_map.insert(tensor.name.clone(), shard.file_name.clone());
    }
    let index = json!({
        "metadata": { "total_size": plan.total_size },
        "weight_map": weight_map,
    });
    let path = dir.join(INDEX_FILE);
    let text = serde_json::to_string_pretty(&index).expect("JSON of plain values");
    std::fs::write(&path, text + "\n").map_err(|e| Error::io(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(name: &str, n: usize) -> OutputTensor {
        OutputTensor {
            name: name.into(),
            dtype: Dtype::BF16,
            shape: vec![n],
        }
    }

    #[test]
    fn shards_respect_the_limit_and_oversized_tensors_stand_alone() {
        let tensors = [
            tensor("a", 10),
            tensor("b", 10),
            tensor("c", 100),
            tensor("d", 5),
        ];
        let plan = plan_output(&tensors, 40).unwrap();
        let groups: Vec<_> = plan.shards.iter().map(|s| s.tensors.clone()).collect();
        assert_eq!(groups, vec![vec![0, 1], vec![2], vec![3]]);
        assert_eq!(plan.total_size, 250);
        assert_eq!(plan.shards[1].file_name, "model-00002-of-00003.safetensors");
        for shard in &plan.shards {
            assert_eq!((shard.header.len() - 8) % 8, 0);
        }
    }

    #[test]
    fn headers_parse_back() {
        let tensors = [tensor("x", 3), tensor("y", 4)];
        let plan = plan_output(&tensors, 1 << 30).unwrap();
        let shard = &plan.shards[0];
        let mut bytes = shard.header.clone();
        bytes.resize(shard.size as usize, 0);
        let header = crate::safetensors::parse_header(Path::new("mem"), &bytes).unwrap();
        assert_eq!(header.tensors.len(), 2);
        assert_eq!(header.data_start as u64, plan.placements[0].offset);
    }
}
