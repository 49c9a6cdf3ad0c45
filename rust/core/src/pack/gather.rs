//! Gathering packed rows: documents stored back to back are copied, in row order, into the
//! flat output columns (tokens, labels with each document's first target masked, positions
//! restarting per document). Documents are copied in parallel into disjoint output slices,
//! from memory ([`gather_into`]) or straight from spill files ([`gather_from_files`]).

use std::fs::File;
use std::path::Path;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::fileio::read_exact_at;
use crate::pack::mask::IGNORE_INDEX;
use crate::pack::spill::read_mask_labels;

/// Where the labels of spilled documents are: a file of int32 values like the tokens', or a
/// file of one bit per token (see [`crate::pack::spill`]).
#[derive(Clone, Copy, Debug)]
pub enum LabelSpill<'a> {
    Values(&'a Path),
    Mask(&'a Path),
}

/// Checks `order` against `doc_offsets` and returns each document's token range, in order.
pub fn document_spans(
    tokens: usize,
    doc_offsets: &[i64],
    order: &[i64],
) -> Result<Vec<(usize, usize)>> {
    let docs = doc_offsets.len().saturating_sub(1);
    order
        .iter()
        .map(|&d| {
            let d = usize::try_from(d)
                .ok()
                .filter(|&d| d < docs)
                .ok_or_else(|| {
                    Error::InvalidArgument(format!("document index {d} out of range"))
                })?;
            let (start, end) = (doc_offsets[d], doc_offsets[d + 1]);
            if start < 0 || end < start || end as usize > tokens {
                return Err(Error::InvalidArgument(format!(
                    "document {d} has offsets {start}..{end} outside the {tokens} tokens"
                )));
            }
            Ok((start as usize, end as usize))
        })
        .collect()
}

/// Splits the three output slices into one piece per span (the outputs must be exactly as
/// long as the spans together): `(start, ids, labels, positions)`.
#[allow(clippy::type_complexity)]
fn pieces<'a>(
    spans: &[(usize, usize)],
    out_ids: &'a mut [i32],
    out_labels: &'a mut [i32],
    out_positions: &'a mut [i32],
) -> Result<Vec<(usize, &'a mut [i32], &'a mut [i32], &'a mut [i32])>> {
    let total: usize = spans.iter().map(|(s, e)| e - s).sum();
    if [out_ids.len(), out_labels.len(), out_positions.len()] != [total; 3] {
        return Err(Error::InvalidArgument(
            "gather buffers have inconsistent lengths".into(),
        ));
    }
    let mut pieces = Vec::with_capacity(spans.len());
    let (mut ids_rest, mut labels_rest, mut pos_rest) = (out_ids, out_labels, out_positions);
    for &(start, end) in spans {
        let n = end - start;
        let (ids_head, ids_tail) = ids_rest.split_at_mut(n);
        let (labels_head, labels_tail) = labels_rest.split_at_mut(n);
        let (pos_head, pos_tail) = pos_rest.split_at_mut(n);
        pieces.push((start, ids_head, labels_head, pos_head));
        (ids_rest, labels_rest, pos_rest) = (ids_tail, labels_tail, pos_tail);
    }
    Ok(pieces)
}

/// A gathered document's own masking: its first label is never a target, its positions
/// restart at 0.
fn finish_document(labels: &mut [i32], positions: &mut [i32]) {
    if let Some(first) = labels.first_mut() {
        *first = IGNORE_INDEX;
    }
    for (i, p) in positions.iter_mut().enumerate() {
        *p = i as i32;
    }
}

/// Reads little-endian int32 values at value index `start` of `file` into `out`.
fn read_values(file: &File, path: &Path, start: usize, out: &mut [i32]) -> Result<()> {
    // SAFETY: any bit pattern is a valid i32, and the byte view covers exactly `out`.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut(out.as_mut_ptr() as *mut u8, std::mem::size_of_val(out))
    };
    read_exact_at(file, bytes, (start * 4) as u64).map_err(|e| Error::io(path, e))?;
    if cfg!(target_endian = "big") {
        out.iter_mut().for_each(|v| *v = i32::from_le(*v));
    }
    Ok(())
}

/// Like [`gather_into`], reading the documents from the spill files (tokens: little-endian
/// int32 values back to back; labels: see [`LabelSpill`]) with positional reads, so that only
/// the output slices are resident (no mapping of the files).
pub fn gather_from_files(
    tokens: &Path,
    labels: LabelSpill<'_>,
    spans: &[(usize, usize)],
    out_ids: &mut [i32],
    out_labels: &mut [i32],
    out_positions: &mut [i32],
) -> Result<()> {
    let open = |path: &Path| File::open(path).map_err(|e| Error::io(path, e));
    let token_file = open(tokens)?;
    let label_file = match labels {
        LabelSpill::Values(path) | LabelSpill::Mask(path) => open(path)?,
    };
    pieces(spans, out_ids, out_labels, out_positions)?
        .into_par_iter()
        .with_min_len(64)
        .try_for_each(|(start, ids, labs, pos)| {
            read_values(&token_file, tokens, start, ids)?;
            match labels {
                LabelSpill::Values(path) => read_values(&label_file, path, start, labs)?,
                LabelSpill::Mask(path) => read_mask_labels(&label_file, path, start, ids, labs)?,
            }
            finish_document(labs, pos);
            Ok(())
        })
}

/// Copies the documents of `spans` one after another into the three output slices, which
/// must be exactly as long as the documents together.
pub fn gather_into(
    tokens: &[i32],
    labels: &[i32],
    spans: &[(usize, usize)],
    out_ids: &mut [i32],
    out_labels: &mut [i32],
    out_positions: &mut [i32],
) -> Result<()> {
    gather_from_chunks(
        &[tokens],
        &[labels],
        spans,
        out_ids,
        out_labels,
        out_positions,
    )
}

/// Like [`gather_into`], the documents held in chunks (arrays kept as they came, not copied
/// into one): chunk `c` holds tokens `starts[c]..starts[c] + tokens[c].len()` of the chunks
/// put end to end, where `starts` are the running sums of the chunks' lengths. A span must lie
/// within one chunk.
pub fn gather_from_chunks(
    tokens: &[&[i32]],
    labels: &[&[i32]],
    spans: &[(usize, usize)],
    out_ids: &mut [i32],
    out_labels: &mut [i32],
    out_positions: &mut [i32],
) -> Result<()> {
    if tokens.len() != labels.len() || tokens.iter().zip(labels).any(|(t, l)| t.len() != l.len()) {
        return Err(Error::InvalidArgument(
            "token and label chunks have inconsistent lengths".into(),
        ));
    }
    let mut starts = Vec::with_capacity(tokens.len() + 1);
    starts.push(0usize);
    for chunk in tokens {
        starts.push(starts.last().unwrap() + chunk.len());
    }
    // Each span's chunk and its start within it, checked before anything is copied.
    let located = spans
        .iter()
        .map(|&(start, end)| {
            let c = starts.partition_point(|&s| s <= start).saturating_sub(1);
            if c >= tokens.len() || end > starts[c + 1] {
                return Err(Error::InvalidArgument(format!(
                    "document {start}..{end} does not lie within one chunk"
                )));
            }
            Ok((c, start - starts[c]))
        })
        .collect::<Result<Vec<_>>>()?;
    pieces(spans, out_ids, out_labels, out_positions)?
        .into_par_iter()
        .zip(located)
        .with_min_len(256)
        .for_each(|((_, ids, labs, pos), (c, local))| {
            let n = ids.len();
            ids.copy_from_slice(&tokens[c][local..local + n]);
            labs.copy_from_slice(&labels[c][local..local + n]);
            finish_document(labs, pos);
        });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flat output columns; row boundaries are the caller's (sums of the documents' lengths).
    #[derive(Debug, Default, PartialEq)]
    struct Gathered {
        input_ids: Vec<i32>,
        labels: Vec<i32>,
        position_ids: Vec<i32>,
    }

    /// [`gather_into`] into new vectors.
    fn gather_documents(
        tokens: &[i32],
        labels: &[i32],
        doc_offsets: &[i64],
        order: &[i64],
    ) -> Result<Gathered> {
        let spans = document_spans(tokens.len(), doc_offsets, order)?;
        let total = spans.iter().map(|(s, e)| e - s).sum();
        let mut out = Gathered {
            input_ids: vec![0; total],
            labels: vec![0; total],
            position_ids: vec![0; total],
        };
        gather_into(
            tokens,
            labels,
            &spans,
            &mut out.input_ids,
            &mut out.labels,
            &mut out.position_ids,
        )?;
        Ok(out)
    }

    #[test]
    fn gathers_in_order_with_first_target_masked() {
        let tokens = [1, 2, 3, 4, 5, 6];
        let labels = [1, 2, 3, 4, 5, 6];
        let offsets = [0, 2, 3, 6];
        let out = gather_documents(&tokens, &labels, &offsets, &[2, 0, 1]).unwrap();
        assert_eq!(out.input_ids, vec![4, 5, 6, 1, 2, 3]);
        assert_eq!(out.labels, vec![-100, 5, 6, -100, 2, -100]);
        assert_eq!(out.position_ids, vec![0, 1, 2, 0, 1, 0]);
    }

    #[test]
    fn gathers_from_files_like_from_memory() {
        let dir = tempfile::tempdir().unwrap();
        let tokens: Vec<i32> = (0..1000).map(|i| i * 7 - 300).collect();
        let labels: Vec<i32> = (0..1000)
            .map(|i| if i % 3 == 0 { -100 } else { i })
            .collect();
        let write = |name: &str, values: &[i32]| {
            let path = dir.path().join(name);
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            std::fs::write(&path, bytes).unwrap();
            path
        };
        let (token_path, label_path) = (write("t", &tokens), write("l", &labels));
        let offsets: Vec<i64> = (0..=100).map(|d| d * 10).collect();
        let order: Vec<i64> = (0..100).rev().step_by(3).collect();
        let expected = gather_documents(&tokens, &labels, &offsets, &order).unwrap();
        let spans = document_spans(tokens.len(), &offsets, &order).unwrap();
        let n = expected.input_ids.len();
        let (mut ids, mut labs, mut pos) = (vec![0; n], vec![0; n], vec![0; n]);
        gather_from_files(
            &token_path,
            LabelSpill::Values(&label_path),
            &spans,
            &mut ids,
            &mut labs,
            &mut pos,
        )
        .unwrap();
        assert_eq!(
            (&ids, &labs, &pos),
            (
                &expected.input_ids,
                &expected.labels,
                &expected.position_ids
            )
        );
        // The same labels as a mask (each is its token or IGNORE_INDEX) gather the same rows.
        let masked: Vec<i32> = tokens
            .iter()
            .zip(&labels)
            .map(|(&t, &l)| if l == IGNORE_INDEX { l } else { t })
            .collect();
        let mask_path = dir.path().join("m");
        let mut writer = crate::pack::spill::LabelMaskWriter::create(&mask_path).unwrap();
        assert!(writer.append(&tokens, &masked).unwrap());
        writer.finish().unwrap();
        let expected = gather_documents(&tokens, &masked, &offsets, &order).unwrap();
        gather_from_files(
            &token_path,
            LabelSpill::Mask(&mask_path),
            &spans,
            &mut ids,
            &mut labs,
            &mut pos,
        )
        .unwrap();
        assert_eq!(
            (ids, labs, pos),
            (expected.input_ids, expected.labels, expected.position_ids)
        );
        // A span past the end of a file is an error naming it, not a short read.
        let (mut a, mut b, mut c) = (vec![0; 10], vec![0; 10], vec![0; 10]);
        let err = gather_from_files(
            &token_path,
            LabelSpill::Values(&label_path),
            &[(995, 1005)],
            &mut a,
            &mut b,
            &mut c,
        )
        .unwrap_err();
        assert!(err.to_string().contains(token_path.to_str().unwrap()));
    }

    #[test]
    fn gathers_from_chunks_like_from_one_array() {
        let tokens: Vec<i32> = (0..1000).map(|i| i * 3 + 1).collect();
        let labels: Vec<i32> = (0..1000)
            .map(|i| if i % 4 == 0 { -100 } else { i })
            .collect();
        let offsets: Vec<i64> = (0..=100).map(|d| d * 10).collect();
        let order: Vec<i64> = (0..100).rev().step_by(3).collect();
        let expected = gather_documents(&tokens, &labels, &offsets, &order).unwrap();
        let spans = document_spans(tokens.len(), &offsets, &order).unwrap();
        let cuts = [0, 30, 30, 500, 990, 1000];
        let chunks = |values: &[i32]| -> Vec<Vec<i32>> {
            cuts.windows(2)
                .map(|w| values[w[0]..w[1]].to_vec())
                .collect()
        };
        let (tc, lc) = (chunks(&tokens), chunks(&labels));
        let tr: Vec<&[i32]> = tc.iter().map(|c| c.as_slice()).collect();
        let lr: Vec<&[i32]> = lc.iter().map(|c| c.as_slice()).collect();
        let n = expected.input_ids.len();
        let (mut ids, mut labs, mut pos) = (vec![0; n], vec![0; n], vec![0; n]);
        gather_from_chunks(&tr, &lr, &spans, &mut ids, &mut labs, &mut pos).unwrap();
        assert_eq!(
            (ids, labs, pos),
            (expected.input_ids, expected.labels, expected.position_ids)
        );
        // A document across two chunks is refused before anything is copied.
        let (mut a, mut b, mut c) = (vec![7; 10], vec![7; 10], vec![7; 10]);
        let err = gather_from_chunks(&tr, &lr, &[(25, 35)], &mut a, &mut b, &mut c).unwrap_err();
        assert!(err.to_string().contains("within one chunk"), "{err}");
        assert_eq!(a, vec![7; 10]);
        let err = gather_from_chunks(&tr, &lr[..2], &[], &mut [], &mut [], &mut []).unwrap_err();
        assert!(err.to_string().contains("inconsistent"), "{err}");
    }

    #[test]
    fn refuses_bad_indices() {
        assert!(gather_documents(&[1], &[1], &[0, 1], &[1]).is_err());
        assert!(gather_documents(&[1], &[1], &[0, 5], &[0]).is_err());
    }
}
