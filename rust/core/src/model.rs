//! A Hugging Face model folder: `model.safetensors`, or shards listed in
//! `model.safetensors.index.json`. Pickled `*.bin` weights are refused, never loaded.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::safetensors::{SafetensorsFile, TensorInfo};

pub const SINGLE_FILE: &str = "model.safetensors";
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// Where one tensor of a model lives.
#[derive(Clone, Debug)]
pub struct TensorLocation {
    pub shard: usize,
    pub info: TensorInfo,
}

pub struct Model {
    pub dir: PathBuf,
    pub shards: Vec<SafetensorsFile>,
    /// Tensors in storage order (shard by shard, then by offset).
    pub tensors: Vec<TensorLocation>,
    by_name: HashMap<String, usize>,
}

#[derive(Deserialize)]
struct IndexFile {
    weight_map: BTreeMap<String, String>,
}

/// A shard path from an index must stay inside the model folder.
fn check_shard_path(index_path: &Path, shard: &str) -> Result<()> {
    let path = Path::new(shard);
    let escapes = shard.is_empty()
        || path.is_absolute()
        || path
            .components()
            .any(|c| !matches!(c, Component::Normal(_)));
    if escapes {
        return Err(Error::invalid_file(
            index_path,
            format!("shard path {shard:?} leaves the model folder"),
        ));
    }
    Ok(())
}

fn pickled_weights(dir: &Path) -> Option<String> {
    let entries = std::fs::read_dir(dir).ok()?;
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|name| name.ends_with(".bin") || name.ends_with(".pt") || name.ends_with(".pth"))
}

impl Model {
    pub fn open(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            let kind = if dir.exists() {
                std::io::ErrorKind::NotADirectory
            } else {
                std::io::ErrorKind::NotFound
            };
            return Err(Error::io(
                dir,
                std::io::Error::new(kind, "model folder not found"),
            ));
        }
        let single = dir.join(SINGLE_FILE);
        let index = dir.join(INDEX_FILE);
        let shard_names: Vec<String>;
        let mut expected: Option<BTreeMap<String, String>> = None;
        if single.is_file() {
            shard_names = vec![SINGLE_FILE.to_string()];
        } else if index.is_file() {
            let text = std::fs::read_to_string(&index).map_err(|e| Error::io(&index, e))?;
            let parsed: IndexFile = serde_json::from_str(&text)
                .map_err(|e| Error::invalid_file(&index, format!("malformed index: {e}")))?;
            if parsed.weight_map.is_empty() {
                return Err(Error::invalid_file(&index, "the index lists no tensors"));
            }
            let mut names: Vec<String> = Vec::new();
            for shard in parsed.weight_map.values() {
                check_shard_path(&index, shard)?;
                if !names.contains(shard) {
                    names.push(shard.clone());
                }
            }
            names.sort();
            shard_names = names;
            expected = Some(parsed.weight_map);
        } else if let Some(pickle) = pickled_weights(dir) {
            return Err(Error::invalid_file(
                &dir.join(&pickle),
                "pickled PyTorch weights are never loaded (unpickling runs arbitrary code); \
                 convert the model to safetensors first",
            ));
        } else {
            return Err(Error::io(
                dir,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("no {SINGLE_FILE} or {INDEX_FILE} in the model folder"),
                ),
            ));
        }

        let mut shards = Vec::with_capacity(shard_names.len());
        let mut tensors = Vec::new();
        let mut by_name = HashMap::new();
        for (shard_index, name) in shard_names.iter().enumerate() {
            let file = SafetensorsFile::open(&dir.join(name))?;
            for info in &file.header.tensors {
                if let Some(map) = &expected {
                    match map.get(&info.name) {
                        Some(listed) if listed == name => {}
                        Some(listed) => {
                            return Err(Error::invalid_file(
                                &file.path,
                                format!(
                                "tensor {:?} is also here although the index puts it in {listed:?}",
                                info.name
                            ),
                            ))
                        }
                        None => {
                            return Err(Error::invalid_file(
                                &file.path,
                                format!("tensor {:?} is not listed in {INDEX_FILE}", info.name),
                            ))
                        }
                    }
                }
                if by_name.insert(info.name.clone(), tensors.len()).is_some() {
                    return Err(Error::invalid_file(
                        &file.path,
                        format!("tensor {:?} appears in two shards", info.name),
                    ));
                }
                tensors.push(TensorLocation {
                    shard: shard_index,
                    info: info.clone(),
                });
            }
            shards.push(file);
        }
        if let Some(map) = &expected {
            if let Some((name, shard)) = map.iter().find(|(name, _)| !by_name.contains_key(*name)) {
                return Err(Error::invalid_file(
                    &index,
                    format!("tensor {name:?} is listed for {shard:?} but that shard does not contain it"),
                ));
            }
        }
        Ok(Model {
            dir: dir.to_path_buf(),
            shards,
            tensors,
            by_name,
        })
    }

    pub fn get(&self, name: &str) -> Option<&TensorLocation> {
        self.by_name.get(name).map(|&i| &self.tensors[i])
    }

    pub fn bytes(&self, location: &TensorLocation) -> &[u8] {
        self.shards[location.shard].tensor_bytes(&location.info)
    }

    pub fn release(&self, location: &TensorLocation, range: &[u8]) {
        self.shards[location.shard].release(range);
    }

    pub fn total_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.info.nbytes() as u64).sum()
    }
}
