//! Gathering packed rows: documents stored back to back are copied, in row order, into the
//! flat output columns (tokens, labels with each document's first target masked, positions
//! restarting per document). Documents are copied in parallel into disjoint output slices.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::pack::mask::IGNORE_INDEX;

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
    let total: usize = spans.iter().map(|(s, e)| e - s).sum();
    if tokens.len() != labels.len()
        || [out_ids.len(), out_labels.len(), out_positions.len()] != [total; 3]
    {
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
    pieces
        .into_par_iter()
        .with_min_len(256)
        .for_each(|(start, ids, labs, pos)| {
            let n = ids.len();
            ids.copy_from_slice(&tokens[start..start + n]);
            labs.copy_from_slice(&labels[start..start + n]);
            if let Some(first) = labs.first_mut() {
                *first = IGNORE_INDEX;
            }
            for (i, p) in pos.iter_mut().enumerate() {
                *p = i as i32;
            }
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
    fn refuses_bad_indices() {
        assert!(gather_documents(&[1], &[1], &[0, 1], &[1]).is_err());
        assert!(gather_documents(&[1], &[1], &[0, 5], &[0]).is_err());
    }
}
