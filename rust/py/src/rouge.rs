//! Bindings of ROUGE-L and the novelty filter.

use plamo_fast_core::rouge::{self, NoveltyFilter, Unit, Verdict};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// `(novel, best score, index of the most similar pool text or -1)`.
type PyVerdict = (bool, f64, i64);

fn unit(name: &str) -> PyResult<Unit> {
    Unit::parse(name).ok_or_else(|| {
        PyValueError::new_err(format!(
            "unit must be 'char', 'word' or 'auto', not {name:?}"
        ))
    })
}

fn py_verdict(v: Verdict) -> PyVerdict {
    (v.novel, v.score, v.index.map_or(-1, |i| i as i64))
}

/// ROUGE-L F1 of two texts (rouge-score's `rougeL` fmeasure).
#[pyfunction]
#[pyo3(signature = (a, b, unit="auto"))]
pub fn rouge_l(a: &str, b: &str, unit: &str) -> PyResult<f64> {
    Ok(rouge::rouge_l(a, b, self::unit(unit)?))
}

/// The ROUGE-L tokens of a text.
#[pyfunction]
#[pyo3(signature = (text, unit="auto"))]
pub fn rouge_tokens(text: &str, unit: &str) -> PyResult<Vec<String>> {
    Ok(rouge::tokens(text, self::unit(unit)?))
}

/// A pool of texts that new texts are checked against by ROUGE-L (the texts themselves stay on
/// the Python side; the pool holds their token ids).
#[pyclass(module = "plamo_fast._native")]
pub struct RougeFilter {
    inner: NoveltyFilter,
}

#[pymethods]
impl RougeFilter {
    #[new]
    #[pyo3(signature = (threshold=0.7, unit="auto"))]
    fn new(threshold: f64, unit: &str) -> PyResult<Self> {
        if !(0.0..=1.0).contains(&threshold) {
            return Err(PyValueError::new_err(format!(
                "threshold must be in [0, 1], not {threshold}"
            )));
        }
        Ok(Self {
            inner: NoveltyFilter::new(threshold, self::unit(unit)?),
        })
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    #[getter]
    fn threshold(&self) -> f64 {
        self.inner.threshold()
    }

    fn add(&mut self, py: Python<'_>, text: &str) {
        py.detach(|| self.inner.add(text));
    }

    fn check(&mut self, py: Python<'_>, text: &str) -> PyVerdict {
        py_verdict(py.detach(|| self.inner.check(text)))
    }

    fn add_if_novel(&mut self, py: Python<'_>, text: &str) -> PyVerdict {
        py_verdict(py.detach(|| self.inner.add_if_novel(text)))
    }

    /// `add_if_novel` over `texts` in order, without the GIL.
    fn filter(&mut self, py: Python<'_>, texts: Vec<String>) -> Vec<PyVerdict> {
        let verdicts = py.detach(|| self.inner.filter(&texts));
        verdicts.into_iter().map(py_verdict).collect()
    }
}
