//! The single funnel from core errors to Python exceptions.

use plamo_fast_core::Error;
use pyo3::create_exception;
use pyo3::exceptions::{
    PyException, PyFileNotFoundError, PyKeyboardInterrupt, PyNotADirectoryError, PyOSError,
    PyValueError,
};
use pyo3::PyErr;

create_exception!(
    _native,
    PlamoFastError,
    PyException,
    "Base class of the errors plamo-fast raises for bad input."
);
create_exception!(
    _native,
    InvalidFileError,
    PlamoFastError,
    "A file whose content is malformed or hostile (e.g. a corrupt safetensors header)."
);
create_exception!(
    _native,
    ModelMismatchError,
    PlamoFastError,
    "Models that cannot be merged: different tensor names, shapes or dtypes."
);

pub fn to_py(err: Error) -> PyErr {
    let message = err.to_string();
    match err {
        Error::Io { source, .. } => match source.kind() {
            std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(message),
            std::io::ErrorKind::NotADirectory => PyNotADirectoryError::new_err(message),
            _ => PyOSError::new_err(message),
        },
        Error::InvalidFile { .. } => InvalidFileError::new_err(message),
        Error::Mismatch(_) => ModelMismatchError::new_err(message),
        Error::InvalidArgument(_) => PyValueError::new_err(message),
        Error::Cancelled => PyKeyboardInterrupt::new_err("merge cancelled"),
    }
}
