//! Bindings of the benchmark leak filter.

use plamo_fast_core::leak::{LeakIndex as CoreIndex, LeakParams};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rayon::prelude::*;

use crate::text::char_offset;

/// One match: `(text_index, item, kind, score, containment, start, end)`, with `start:end` the
/// character span in the original text.
type PyMatch = (usize, u32, &'static str, f64, f64, usize, usize);

/// An index of benchmark items (one string per item, e.g. per turn).
#[pyclass(module = "plamo_fast._native", frozen)]
pub struct LeakIndex {
    inner: CoreIndex,
}

#[pymethods]
impl LeakIndex {
    #[new]
    #[pyo3(signature = (
        items, *, ngram=5, candidate_containment=0.3, min_item_len=10, min_contained_len=10,
        min_near_len=30, edit_rate=0.2, edit_free_len=5
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        items: Vec<String>,
        ngram: usize,
        candidate_containment: f64,
        min_item_len: usize,
        min_contained_len: usize,
        min_near_len: usize,
        edit_rate: f64,
        edit_free_len: usize,
    ) -> PyResult<Self> {
        if ngram == 0
            || !(0.0..=1.0).contains(&candidate_containment)
            || !(0.0..1.0).contains(&edit_rate)
        {
            return Err(PyValueError::new_err(
                "ngram must be positive, candidate_containment in [0, 1] and edit_rate in [0, 1)",
            ));
        }
        let params = LeakParams {
            ngram,
            candidate_containment,
            min_item_len,
            min_contained_len,
            min_near_len,
            edit_rate,
            edit_free_len,
        };
        let inner = py.detach(|| CoreIndex::new(&items, params));
        Ok(Self { inner })
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Matching-form length of item `item`.
    fn item_len(&self, item: usize) -> PyResult<usize> {
        if item >= self.inner.len() {
            return Err(PyValueError::new_err("item out of range"));
        }
        Ok(self.inner.item_len(item))
    }

    /// Every item found in each text (in parallel, without the GIL).
    fn scan(&self, py: Python<'_>, texts: Vec<String>) -> Vec<PyMatch> {
        py.detach(|| {
            texts
                .par_iter()
                .enumerate()
                .flat_map_iter(|(i, text)| {
                    self.inner.scan(text).into_iter().map(move |m| {
                        (
                            i,
                            m.item,
                            m.kind.as_str(),
                            m.score,
                            m.containment,
                            char_offset(text, m.span.0),
                            char_offset(text, m.span.1),
                        )
                    })
                })
                .collect()
        })
    }
}
