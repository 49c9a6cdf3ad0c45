//! `plamo_fast._native`: thin PyO3 bindings over plamo-fast-core. Exports only; each concern
//! lives in its own file.

mod columns;
mod dedup;
mod errors;
mod leak;
mod merge;
mod pack;
mod parquet;
mod rouge;
mod text;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("PlamoFastError", py.get_type::<errors::PlamoFastError>())?;
    m.add(
        "InvalidFileError",
        py.get_type::<errors::InvalidFileError>(),
    )?;
    m.add(
        "ModelMismatchError",
        py.get_type::<errors::ModelMismatchError>(),
    )?;
    m.add_class::<merge::SafetensorsModel>()?;
    m.add_function(wrap_pyfunction!(merge::merge, m)?)?;
    m.add_function(wrap_pyfunction!(merge::check_models_compatible, m)?)?;
    m.add_function(wrap_pyfunction!(pack::best_fit_decreasing_rows, m)?)?;
    m.add_class::<pack::ChatTokenizer>()?;
    m.add_function(wrap_pyfunction!(pack::gather_documents, m)?)?;
    m.add_function(wrap_pyfunction!(pack::gather_spilled, m)?)?;
    m.add_function(wrap_pyfunction!(pack::gather_chunks, m)?)?;
    m.add_class::<pack::LabelMaskSpill>()?;
    m.add_function(wrap_pyfunction!(pack::labels_from_mask, m)?)?;
    m.add_function(wrap_pyfunction!(pack::pretokenized_trained_counts, m)?)?;
    m.add_class::<parquet::ParquetListWriter>()?;
    m.add_function(wrap_pyfunction!(text::normalize_text, m)?)?;
    m.add_function(wrap_pyfunction!(text::normalize_with_spans, m)?)?;
    m.add_class::<leak::LeakIndex>()?;
    m.add_class::<dedup::Deduper>()?;
    m.add_class::<columns::ColumnKeys>()?;
    m.add_class::<rouge::RougeFilter>()?;
    m.add_function(wrap_pyfunction!(rouge::rouge_l, m)?)?;
    m.add_function(wrap_pyfunction!(rouge::rouge_tokens, m)?)?;
    Ok(())
}
