//! Streaming merge of safetensors checkpoints.
//!
//! Each tensor is cut into fixed-size units. SLERP reads every unit twice: once for the sums
//! of squares and products, once to write the interpolated values. Units run in parallel
//! across and inside tensors; each unit decodes blocks of float32 into small scratch buffers,
//! writes its output bytes at a precomputed offset, and then drops the input pages it touched,
//! so the resident set stays at a few units' worth whatever the model size.

pub mod kernels;
pub mod writer;

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rayon::prelude::*;

use crate::dtype::{decode_f32, encode_f32};
use crate::error::{Error, Result};
use crate::fileio::{start_writeback, write_all_at};
use crate::model::{Model, TensorLocation};
use kernels::{block_moments, slerp_coefficients, Moments};
use writer::{OutputPlan, OutputTensor};

/// Elements per unit of parallel work (and of page release).
pub const UNIT_ELEMS: usize = 1 << 20;
/// Elements decoded at a time inside a unit; small enough to stay in the L2 cache.
const BLOCK_ELEMS: usize = 1 << 14;

/// What to do with one tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum Recipe {
    /// Spherical interpolation between the first two models; `t` = 0 gives the first exactly.
    Slerp { t: f64 },
    /// Weighted sum of all models, divided by the sum of the weights when `normalize`.
    Linear { weights: Vec<f64>, normalize: bool },
}

impl std::fmt::Display for Recipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Recipe::Slerp { t } => write!(f, "t = {t}"),
            Recipe::Linear { weights, normalize } => {
                write!(f, "weights {weights:?}")?;
                if !normalize {
                    write!(f, " (not normalized)")?;
                }
                Ok(())
            }
        }
    }
}

pub struct MergeOptions {
    pub max_shard_size: u64,
    /// Flush the shards to disk before returning: writeback starts as each unit is written and
    /// the shards are synced in parallel at the end. The small index file and the folder are
    /// the caller's to sync (the Python front end syncs the whole folder when it publishes it;
    /// the shards are clean by then, so that costs milliseconds, not a second write).
    pub fsync: bool,
}

/// Shared with the caller while a merge runs: bytes written so far, and a stop request.
#[derive(Default)]
pub struct MergeProgress {
    pub written_bytes: AtomicU64,
    pub cancel: AtomicBool,
}

#[derive(Clone, Debug, Default)]
pub struct MergeReport {
    pub shard_files: Vec<String>,
    pub total_bytes: u64,
    pub tensors: usize,
    /// Tensors where SLERP fell back to linear interpolation (|cos| > 0.9995).
    pub linear_fallbacks: usize,
    /// Tensors copied verbatim (t of 0 or 1, or non-float tensors identical in every model).
    pub copied: usize,
}

/// Checks that all models have the same tensor names, dtypes and shapes; the error names the
/// first offending tensor in the first model's storage order.
pub fn check_compatible(models: &[&Model]) -> Result<()> {
    let (base, others) = models
        .split_first()
        .ok_or_else(|| Error::InvalidArgument("no models to merge".into()))?;
    for (k, other) in others.iter().enumerate() {
        let label = format!("model {} ({})", k + 2, other.dir.display());
        for t in &base.tensors {
            let name = &t.info.name;
            let Some(o) = other.get(name) else {
                return Err(Error::Mismatch(format!(
                    "tensor {name:?} of {} is missing from {label}",
                    base.dir.display()
                )));
            };
            if o.info.dtype != t.info.dtype {
                return Err(Error::Mismatch(format!(
                    "tensor {name:?} has dtype {} in {} but {} in {label}",
                    t.info.dtype.name(),
                    base.dir.display(),
                    o.info.dtype.name()
                )));
            }
            if o.info.shape != t.info.shape {
                return Err(Error::Mismatch(format!(
                    "tensor {name:?} has shape {:?} in {} but {:?} in {label}",
                    t.info.shape,
                    base.dir.display(),
                    o.info.shape
                )));
            }
            // Integer and boolean buffers (position ids, masks) are copied, so they must agree.
            if !t.info.dtype.is_mergeable_float() && other.bytes(o) != base.bytes(t) {
                return Err(Error::Mismatch(format!(
                    "tensor {name:?} has dtype {}, which is copied rather than interpolated, \
                     but its values differ between {} and {label}",
                    t.info.dtype.name(),
                    base.dir.display()
                )));
            }
        }
        if let Some(extra) = other
            .tensors
            .iter()
            .find(|t| base.get(&t.info.name).is_none())
        {
            return Err(Error::Mismatch(format!(
                "tensor {:?} of {label} is missing from {}",
                extra.info.name,
                base.dir.display()
            )));
        }
    }
    Ok(())
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

#[derive(Default)]
struct Scratch {
    a: Vec<f32>,
    b: Vec<f32>,
    out: Vec<f32>,
    bytes: Vec<u8>,
}

/// One tensor's inputs (one location per model) and its output place.
struct TensorTask<'a> {
    name: &'a str,
    inputs: Vec<&'a TensorLocation>,
    recipe: Recipe,
    out_file: &'a File,
    out_path: &'a Path,
    out_offset: u64,
    /// Hand written pages to the disk right away, so the final fsync has little left to do.
    start_writeback: bool,
}

impl TensorTask<'_> {
    fn numel(&self) -> usize {
        self.inputs[0].info.numel()
    }

    fn dtype(&self) -> crate::dtype::Dtype {
        self.inputs[0].info.dtype
    }

    fn units(&self) -> impl IndexedParallelIterator<Item = (usize, usize)> {
        let n = self.numel();
        (0..n.div_ceil(UNIT_ELEMS))
            .into_par_iter()
            .map(move |u| (u * UNIT_ELEMS, ((u + 1) * UNIT_ELEMS).min(n)))
    }

    fn input_range<'m>(
        &self,
        models: &'m [&Model],
        k: usize,
        start: usize,
        end: usize,
    ) -> &'m [u8] {
        let size = self.dtype().size();
        &models[k].bytes(self.inputs[k])[start * size..end * size]
    }

    fn release(&self, models: &[&Model], start: usize, end: usize) {
        for (k, model) in models.iter().enumerate().take(self.inputs.len()) {
            model.release(self.inputs[k], self.input_range(models, k, start, end));
        }
    }

    fn write(&self, start: usize, bytes: &[u8]) -> Result<()> {
        let offset = self.out_offset + (start * self.dtype().size()) as u64;
        write_all_at(self.out_file, bytes, offset).map_err(|e| Error::io(self.out_path, e))?;
        if self.start_writeback {
            start_writeback(self.out_file, offset, bytes.len());
        }
        Ok(())
    }
}

fn check_cancel(progress: &MergeProgress) -> Result<()> {
    if progress.cancel.load(Ordering::Relaxed) {
        Err(Error::Cancelled)
    } else {
        Ok(())
    }
}

/// Sums of squares and products over one unit of a two-model tensor.
fn unit_moments(task: &TensorTask, models: &[&Model], start: usize, end: usize) -> Result<Moments> {
    let dtype = task.dtype();
    let (ra, rb) = (
        task.input_range(models, 0, start, end),
        task.input_range(models, 1, start, end),
    );
    let size = dtype.size();
    SCRATCH.with(|s| {
        let s = &mut *s.borrow_mut();
        let mut total = Moments::default();
        for (ba, bb) in ra
            .chunks(BLOCK_ELEMS * size)
            .zip(rb.chunks(BLOCK_ELEMS * size))
        {
            let n = ba.len() / size;
            s.a.resize(n, 0.0);
            s.b.resize(n, 0.0);
            decode_f32(dtype, ba, &mut s.a)?;
            decode_f32(dtype, bb, &mut s.b)?;
            total = total + block_moments(&s.a, &s.b);
        }
        Ok(total)
    })
}

/// Computes one unit of output values into `bytes` (encoded in the tensor's dtype).
fn unit_output(
    task: &TensorTask,
    models: &[&Model],
    coefficients: &[f32],
    start: usize,
    end: usize,
) -> Result<()> {
    let dtype = task.dtype();
    let size = dtype.size();
    SCRATCH.with(|s| {
        let s = &mut *s.borrow_mut();
        s.bytes.resize((end - start) * size, 0);
        let mut block_start = start;
        while block_start < end {
            let block_end = (block_start + BLOCK_ELEMS).min(end);
            let n = block_end - block_start;
            s.a.resize(n, 0.0);
            s.b.resize(n, 0.0);
            s.out.resize(n, 0.0);
            match &task.recipe {
                Recipe::Slerp { .. } => {
                    decode_f32(
                        dtype,
                        task.input_range(models, 0, block_start, block_end),
                        &mut s.a,
                    )?;
                    decode_f32(
                        dtype,
                        task.input_range(models, 1, block_start, block_end),
                        &mut s.b,
                    )?;
                    kernels::axpby(coefficients[0], &s.a, coefficients[1], &s.b, &mut s.out);
                }
                Recipe::Linear { .. } => {
                    s.out.fill(0.0);
                    for (k, &w) in coefficients[..task.inputs.len()].iter().enumerate() {
                        decode_f32(
                            dtype,
                            task.input_range(models, k, block_start, block_end),
                            &mut s.a,
                        )?;
                        kernels::accumulate_scaled(&mut s.out, w, &s.a);
                    }
                    let denominator = coefficients[task.inputs.len()];
                    for v in s.out.iter_mut() {
                        *v /= denominator;
                    }
                }
            }
            if !kernels::all_below(&s.out, dtype.overflow_threshold()) {
                return Err(bad_values_error(task, models, block_start, block_end));
            }
            let lo = (block_start - start) * size;
            encode_f32(dtype, &s.out, &mut s.bytes[lo..lo + n * size])?;
            block_start = block_end;
        }
        task.write(start, &s.bytes)
    })
}

/// The refusal of a NaN or infinity in input `k` of a tensor.
fn non_finite_error(task: &TensorTask, models: &[&Model], k: usize) -> Error {
    Error::InvalidArgument(format!(
        "tensor {:?} of model {} ({}) contains NaN or infinite values; \
         a merge with it would be poisoned (fix or drop that checkpoint)",
        task.name,
        k + 1,
        models[k].dir.display()
    ))
}

/// Why the merged values of elements `start..end` are not all finite in the stored dtype: the
/// first model with a NaN or infinity there, else an overflow caused by the recipe.
fn bad_values_error(task: &TensorTask, models: &[&Model], start: usize, end: usize) -> Error {
    let dtype = task.dtype();
    let mut values = vec![0f32; end - start];
    for k in 0..task.inputs.len() {
        let decoded = decode_f32(dtype, task.input_range(models, k, start, end), &mut values);
        if decoded.is_ok() && !kernels::all_below(&values, f32::INFINITY) {
            return non_finite_error(task, models, k);
        }
    }
    Error::InvalidArgument(format!(
        "tensor {:?}: the merged values overflow {} with {} (weights that do not sum to \
         their usual scale, e.g. negative ones, push them past its largest value)",
        task.name,
        dtype.name(),
        task.recipe
    ))
}

/// Copies the bytes of input `k` unchanged.
fn copy_input(
    task: &TensorTask,
    models: &[&Model],
    k: usize,
    progress: &MergeProgress,
) -> Result<()> {
    task.units().try_for_each(|(start, end)| {
        check_cancel(progress)?;
        task.write(start, task.input_range(models, k, start, end))?;
        task.release(models, start, end);
        let bytes = ((end - start) * task.dtype().size()) as u64;
        progress.written_bytes.fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    })
}

/// The per-unit output pass shared by SLERP and linear merges.
fn write_units(
    task: &TensorTask,
    models: &[&Model],
    coefficients: &[f32],
    progress: &MergeProgress,
) -> Result<()> {
    task.units().try_for_each(|(start, end)| {
        check_cancel(progress)?;
        unit_output(task, models, coefficients, start, end)?;
        task.release(models, start, end);
        let bytes = ((end - start) * task.dtype().size()) as u64;
        progress.written_bytes.fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    })
}

/// Outcome of one tensor, for the report.
enum Done {
    Copied,
    Interpolated { linear_fallback: bool },
}

fn merge_tensor(task: &TensorTask, models: &[&Model], progress: &MergeProgress) -> Result<Done> {
    let dtype = task.dtype();
    if !dtype.is_mergeable_float() {
        // Identical in every model (checked by `check_compatible`): copied.
        copy_input(task, models, 0, progress)?;
        return Ok(Done::Copied);
    }
    match &task.recipe {
        Recipe::Slerp { t } if *t == 0.0 => {
            copy_input(task, models, 0, progress).map(|_| Done::Copied)
        }
        Recipe::Slerp { t } if *t == 1.0 => {
            copy_input(task, models, 1, progress).map(|_| Done::Copied)
        }
        Recipe::Slerp { t } => {
            let partials: Vec<Moments> = task
                .units()
                .map(|(start, end)| {
                    check_cancel(progress)?;
                    let m = unit_moments(task, models, start, end)?;
                    task.release(models, start, end);
                    Ok(m)
                })
                .collect::<Result<_>>()?;
            // Combined in unit order: the same sums whatever the thread count.
            let moments = partials
                .into_iter()
                .fold(Moments::default(), |acc, m| acc + m);
            if let Some(k) = kernels::non_finite_input(moments) {
                return Err(non_finite_error(task, models, k));
            }
            let c = slerp_coefficients(*t, moments);
            write_units(task, models, &[c.a, c.b], progress)?;
            Ok(Done::Interpolated {
                linear_fallback: c.linear,
            })
        }
        Recipe::Linear { weights, normalize } => {
            let mut coefficients: Vec<f32> = weights.iter().map(|&w| w as f32).collect();
            let denominator: f32 = if *normalize {
                coefficients.iter().fold(0.0, |acc, &w| acc + w)
            } else {
                1.0
            };
            if denominator == 0.0 || !denominator.is_finite() {
                return Err(Error::InvalidArgument(format!(
                    "tensor {:?}: linear weights {weights:?} sum to {denominator}",
                    task.name
                )));
            }
            coefficients.push(denominator);
            write_units(task, models, &coefficients, progress)?;
            Ok(Done::Interpolated {
                linear_fallback: false,
            })
        }
    }
}

/// Merges `models` tensor by tensor into shards written in `out_dir` (which must exist and
/// should be empty), with the recipe given for each tensor of the first model.
pub fn merge_models(
    models: &[&Model],
    recipes: &HashMap<String, Recipe>,
    out_dir: &Path,
    options: &MergeOptions,
    progress: &MergeProgress,
) -> Result<MergeReport> {
    check_compatible(models)?;
    let base = models[0];
    for t in &base.tensors {
        let recipe = recipes.get(&t.info.name).ok_or_else(|| {
            Error::InvalidArgument(format!("no merge recipe for tensor {:?}", t.info.name))
        })?;
        let needed = match recipe {
            Recipe::Slerp { t } => {
                if !t.is_finite() {
                    return Err(Error::InvalidArgument(format!(
                        "t = {t} is not a finite number"
                    )));
                }
                2
            }
            Recipe::Linear { weights, .. } => weights.len(),
        };
        if needed != models.len() {
            return Err(Error::InvalidArgument(format!(
                "tensor {:?}: the recipe needs {needed} models but {} were given",
                t.info.name,
                models.len()
            )));
        }
    }
    if let Some(extra) = recipes.keys().find(|name| base.get(name).is_none()) {
        return Err(Error::InvalidArgument(format!(
            "a merge recipe names tensor {extra:?}, which the models do not have"
        )));
    }

    let outputs: Vec<OutputTensor> = base
        .tensors
        .iter()
        .map(|t| OutputTensor {
            name: t.info.name.clone(),
            dtype: t.info.dtype,
            shape: t.info.shape.clone(),
        })
        .collect();
    let plan: OutputPlan = writer::plan_output(&outputs, options.max_shard_size)?;
    let files = writer::create_shards(out_dir, &plan)?;
    let paths: Vec<_> = plan
        .shards
        .iter()
        .map(|s| out_dir.join(&s.file_name))
        .collect();

    let tasks: Vec<TensorTask> = base
        .tensors
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let name = t.info.name.as_str();
            let placement = plan.placements[i];
            TensorTask {
                name,
                inputs: models
                    .iter()
                    .map(|m| m.get(name).expect("checked"))
                    .collect(),
                recipe: recipes[name].clone(),
                out_file: &files[placement.shard],
                out_path: &paths[placement.shard],
                out_offset: placement.offset,
                start_writeback: options.fsync,
            }
        })
        .collect();
    let outcomes: Vec<Done> = tasks
        .par_iter()
        .map(|task| merge_tensor(task, models, progress))
        .collect::<Result<_>>()?;

    if options.fsync {
        files
            .par_iter()
            .zip(&paths)
            .try_for_each(|(f, p)| f.sync_all().map_err(|e| Error::io(p, e)))?;
    }
    writer::write_index(out_dir, &outputs, &plan)?;

    let mut report = MergeReport {
        shard_files: plan.shards.iter().map(|s| s.file_name.clone()).collect(),
        total_bytes: plan.total_size,
        tensors: outputs.len(),
        ..Default::default()
    };
    for outcome in outcomes {
        match outcome {
            Done::Copied => report.copied += 1,
            Done::Interpolated { linear_fallback } => {
                report.linear_fallbacks += linear_fallback as usize
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-tensor model (F32 values) written with the output writer.
    fn model_with(dir: &Path, values: &[f32]) -> Model {
        std::fs::create_dir_all(dir).unwrap();
        let tensors = [OutputTensor {
            name: "w".into(),
            dtype: crate::dtype::Dtype::F32,
            shape: vec![values.len()],
        }];
        let plan = writer::plan_output(&tensors, 1 << 30).unwrap();
        let files = writer::create_shards(dir, &plan).unwrap();
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        write_all_at(&files[0], &bytes, plan.placements[0].offset).unwrap();
        writer::write_index(dir, &tensors, &plan).unwrap();
        Model::open(dir).unwrap()
    }

    fn linear(models: &[&Model], weights: Vec<f64>, out: &Path) -> Result<MergeReport> {
        std::fs::create_dir_all(out).unwrap();
        let recipes = HashMap::from([(
            "w".to_string(),
            Recipe::Linear {
                weights,
                normalize: true,
            },
        )]);
        let options = MergeOptions {
            max_shard_size: 1 << 30,
            fsync: false,
        };
        merge_models(models, &recipes, out, &options, &MergeProgress::default())
    }

    #[test]
    fn linear_refuses_nan_and_infinity_naming_the_model() {
        let dir = tempfile::tempdir().unwrap();
        let n = UNIT_ELEMS + 5;
        let good: Vec<f32> = (0..n).map(|i| (i % 7) as f32).collect();
        for (case, bad_value) in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY]
            .into_iter()
            .enumerate()
        {
            let mut bad = good.clone();
            bad[n - 2] = bad_value;
            let a = model_with(&dir.path().join(format!("a{case}")), &good);
            let b = model_with(&dir.path().join(format!("b{case}")), &bad);
            // A weight of 0 does not hide it (0 × inf is NaN in the sum).
            for weights in [vec![1.0, 1.0], vec![1.0, 0.0]] {
                let out = dir.path().join(format!("out{case}-{}", weights[1]));
                let message = linear(&[&a, &b], weights, &out).unwrap_err().to_string();
                assert!(message.contains("tensor \"w\" of model 2"), "{message}");
                assert!(message.contains(&format!("b{case}")), "{message}");
                assert!(message.contains("NaN or infinite"), "{message}");
            }
        }
    }

    #[test]
    fn linear_refuses_an_overflow_it_causes() {
        let dir = tempfile::tempdir().unwrap();
        let a = model_with(&dir.path().join("a"), &[f32::MAX, 1.0]);
        let b = model_with(&dir.path().join("b"), &[-f32::MAX, 1.0]);
        let message = linear(&[&a, &b], vec![2.0, -0.5], &dir.path().join("out"))
            .unwrap_err()
            .to_string();
        assert!(message.contains("overflow F32"), "{message}");
        assert!(message.contains("weights [2.0, -0.5]"), "{message}");
        let fine = linear(&[&a, &b], vec![1.0, 1.0], &dir.path().join("ok")).unwrap();
        assert_eq!(fine.tensors, 1);
    }
}
