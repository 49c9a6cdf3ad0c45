//! plamo-fast-core: the CPU hot paths of plamo-fast, in plain Rust (no Python).
//!
//! - [`safetensors`]: a validating, memory-mapped reader of `.safetensors` files (a security boundary).
//! - [`model`]: a Hugging Face model folder (single file or sharded with an index).
//! - [`merge`]: streaming SLERP / linear merging of checkpoints with bounded memory.

pub mod dtype;
pub mod error;
pub mod merge;
pub mod model;
pub mod pack;
pub mod safetensors;

pub use error::{Error, Result};
