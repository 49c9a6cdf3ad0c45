//! The one error type of the core crate. Every variant carries the context a user needs
//! (file, tensor, expected vs got); the Python binding maps variants to exception types.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An OS-level failure on a named file (missing, unreadable, disk full, ...).
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file whose content is not what its format promises (hostile or corrupt).
    #[error("{path}: {message}")]
    InvalidFile { path: PathBuf, message: String },
    /// Two inputs that cannot be combined (names, shapes, dtypes, vocabulary).
    #[error("{0}")]
    Mismatch(String),
    /// A valid request the core does not support (an argument out of range, a dtype).
    #[error("{0}")]
    InvalidArgument(String),
    /// The caller asked to stop (Ctrl-C).
    #[error("cancelled")]
    Cancelled,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn invalid_file(path: &Path, message: impl Into<String>) -> Self {
        Error::InvalidFile {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}
