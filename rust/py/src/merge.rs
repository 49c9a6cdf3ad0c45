//! Bindings of model opening and merging. Work runs on a Rayon pool with the GIL released;
//! the calling thread wakes up a few times a second to report progress and to turn Ctrl-C
//! into a cancellation.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use plamo_fast_core::merge::{
    check_compatible, merge_models, MergeOptions, MergeProgress, MergeReport, Recipe,
};
use plamo_fast_core::model::Model;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::to_py;

/// An opened, validated model folder (memory-mapped safetensors).
#[pyclass(module = "plamo_fast._native", frozen)]
pub struct SafetensorsModel {
    model: Model,
}

#[pymethods]
impl SafetensorsModel {
    #[new]
    fn open(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let model = py.detach(|| Model::open(&path)).map_err(to_py)?;
        Ok(SafetensorsModel { model })
    }

    #[getter]
    fn path(&self) -> PathBuf {
        self.model.dir.clone()
    }

    /// `(name, dtype, shape)` of every tensor, in storage order.
    fn tensors(&self) -> Vec<(String, &'static str, Vec<usize>)> {
        self.model
            .tensors
            .iter()
            .map(|t| {
                (
                    t.info.name.clone(),
                    t.info.dtype.name(),
                    t.info.shape.clone(),
                )
            })
            .collect()
    }

    /// Total bytes of tensor data.
    fn nbytes(&self) -> u64 {
        self.model.total_bytes()
    }

    /// Shard files, relative to the folder.
    fn shard_files(&self) -> Vec<PathBuf> {
        self.model
            .shards
            .iter()
            .map(|s| {
                s.path
                    .strip_prefix(&self.model.dir)
                    .unwrap_or(&s.path)
                    .to_path_buf()
            })
            .collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "SafetensorsModel({:?}, tensors={}, shards={})",
            self.model.dir,
            self.model.tensors.len(),
            self.model.shards.len()
        )
    }
}

fn parse_recipes(
    method: &str,
    recipes: HashMap<String, Vec<f64>>,
    normalize: bool,
) -> PyResult<HashMap<String, Recipe>> {
    recipes
        .into_iter()
        .map(|(name, values)| {
            let recipe = match method {
                "slerp" => match values.as_slice() {
                    [t] => Recipe::Slerp { t: *t },
                    _ => {
                        return Err(PyValueError::new_err(format!(
                            "slerp takes one t per tensor, got {values:?} for {name:?}"
                        )))
                    }
                },
                "linear" => Recipe::Linear {
                    weights: values,
                    normalize,
                },
                other => {
                    return Err(PyValueError::new_err(format!(
                        "unknown merge method {other:?} (expected 'slerp' or 'linear')"
                    )))
                }
            };
            Ok((name, recipe))
        })
        .collect()
}

fn report_dict<'py>(py: Python<'py>, report: &MergeReport) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("shard_files", report.shard_files.clone())?;
    dict.set_item("total_bytes", report.total_bytes)?;
    dict.set_item("tensors", report.tensors)?;
    dict.set_item("linear_fallbacks", report.linear_fallbacks)?;
    dict.set_item("copied", report.copied)?;
    Ok(dict)
}

/// Merges `models` into shards and an index written in the existing folder `out_dir`.
///
/// `recipes` maps every tensor name to `[t]` (slerp) or one weight per model (linear).
/// `progress(written_bytes)` is called a few times a second from the calling thread.
#[pyfunction]
#[pyo3(signature = (models, method, recipes, out_dir, *, max_shard_size, fsync = true, threads = 0, normalize = true, progress = None))]
#[allow(clippy::too_many_arguments)]
pub fn merge<'py>(
    py: Python<'py>,
    models: Vec<Py<SafetensorsModel>>,
    method: &str,
    recipes: HashMap<String, Vec<f64>>,
    out_dir: PathBuf,
    max_shard_size: u64,
    fsync: bool,
    threads: usize,
    normalize: bool,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let recipes = parse_recipes(method, recipes, normalize)?;
    let model_refs: Vec<&Model> = models.iter().map(|m| &m.get().model).collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| PyValueError::new_err(format!("cannot start {threads} threads: {e}")))?;
    let state = MergeProgress::default();
    let options = MergeOptions {
        max_shard_size,
        fsync,
    };
    let mut callback_error: Option<PyErr> = None;
    let result = py.detach(|| {
        std::thread::scope(|scope| {
            let worker = scope.spawn(|| {
                pool.install(|| merge_models(&model_refs, &recipes, &out_dir, &options, &state))
            });
            while !worker.is_finished() {
                std::thread::sleep(Duration::from_millis(50));
                Python::attach(|py| {
                    if let Err(e) = py.check_signals() {
                        callback_error.get_or_insert(e);
                    } else if let Some(cb) = &progress {
                        let written = state.written_bytes.load(Ordering::Relaxed);
                        if let Err(e) = cb.bind(py).call1((written,)) {
                            callback_error.get_or_insert(e);
                        }
                    }
                });
                if callback_error.is_some() {
                    state.cancel.store(true, Ordering::Relaxed);
                }
            }
            worker.join().expect("merge worker panicked")
        })
    });
    if let Some(e) = callback_error {
        return Err(e);
    }
    let report = result.map_err(to_py)?;
    if let Some(cb) = &progress {
        cb.call1(py, (report.total_bytes,))?;
    }
    report_dict(py, &report)
}

/// Raises `ModelMismatchError` naming the first tensor whose name, dtype or shape differs.
#[pyfunction]
pub fn check_models_compatible(models: Vec<Py<SafetensorsModel>>) -> PyResult<()> {
    let refs: Vec<&Model> = models.iter().map(|m| &m.get().model).collect();
    check_compatible(&refs).map_err(to_py)
}
