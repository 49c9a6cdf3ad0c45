//! plamo-fast-core: the CPU hot paths of plamo-fast, in plain Rust (no Python).
//!
//! - [`safetensors`]: a validating, memory-mapped reader of `.safetensors` files (a security boundary).
//! - [`model`]: a Hugging Face model folder (single file or sharded with an index).
//! - [`merge`]: streaming SLERP / linear merging of checkpoints with bounded memory.
//! - [`pack`]: tokenize, label responses, and best-fit-decreasing packing.
//! - [`parquet`]: a minimal Parquet writer of integer-list columns (pack's output).
//! - [`text`]: the matching form of a text (NFKC, case-fold, no punctuation) with spans.
//! - [`leak`]: the benchmark leak filter; [`dedup`]: exact and MinHash near-duplicates.
//! - [`rouge`]: ROUGE-L and the novelty filter of `synth instruct`.

pub mod dedup;
pub mod dtype;
pub mod error;
pub mod fileio;
pub mod leak;
pub mod merge;
pub mod model;
pub mod pack;
pub mod parquet;
pub mod rouge;
pub mod safetensors;
pub mod text;

pub use error::{Error, Result};
