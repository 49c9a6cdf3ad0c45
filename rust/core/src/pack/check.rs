//! Checking pre-tokenized rows straight from Arrow list buffers (flat values and row offsets),
//! with no per-record object: the fast path of `plamo-fast pack` for pre-tokenized Parquet.
//! A batch with any refused row is reported as such; the caller then names each refusal.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::pack::mask::IGNORE_INDEX;

/// The values of row `r`, checked against the flat values' length.
fn row<'a, T>(values: &'a [T], offsets: &[i64], r: usize) -> Option<&'a [T]> {
    let (start, end) = (
        usize::try_from(offsets[r]).ok()?,
        usize::try_from(offsets[r + 1]).ok()?,
    );
    values.get(start..end)
}

/// For rows of `input_ids` and `labels` given as flat values and offsets (`offsets[r]..offsets[r
/// + 1]` is row `r`): each row's trained tokens (labels other than -100 after the first
/// token), or `None` when any row would be refused: an empty row, a token id outside
/// `0..limit`, labels of another length, or a label neither -100 nor such an id.
pub fn trained_counts<T>(
    ids: &[T],
    ids_offsets: &[i64],
    labels: &[T],
    label_offsets: &[i64],
    limit: i64,
) -> Result<Option<Vec<i64>>>
where
    T: Copy + Into<i64> + Sync,
{
    if ids_offsets.len() != label_offsets.len() || ids_offsets.is_empty() {
        return Err(Error::InvalidArgument(
            "input_ids and labels offsets differ in length (or are empty)".into(),
        ));
    }
    let ignore = i64::from(IGNORE_INDEX);
    let rows = ids_offsets.len() - 1;
    let counts: Option<Vec<i64>> = (0..rows)
        .into_par_iter()
        .with_min_len(64)
        .map(|r| {
            let ids = row(ids, ids_offsets, r)?;
            let labels = row(labels, label_offsets, r)?;
            if ids.is_empty() || ids.len() != labels.len() {
                return None;
            }
            if !ids.iter().all(|&v| (0..limit).contains(&v.into())) {
                return None;
            }
            let mut trained = 0i64;
            for (i, &label) in labels.iter().enumerate() {
                let label: i64 = label.into();
                if label == ignore {
                    continue;
                }
                if !(0..limit).contains(&label) {
                    return None;
                }
                trained += i64::from(i > 0);
            }
            Some(trained)
        })
        .collect();
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_targets_after_the_first_token() {
        let ids = [5i32, 6, 7, 1, 2];
        let labels = [5i32, -100, 7, -100, 2];
        let got = trained_counts(&ids, &[0, 3, 5], &labels, &[0, 3, 5], 10).unwrap();
        assert_eq!(got, Some(vec![1, 1]));
    }

    #[test]
    fn refuses_any_bad_row() {
        let ok = |ids: &[i64], labels: &[i64], limit| {
            let offsets = [0, ids.len() as i64];
            let label_offsets = [0, labels.len() as i64];
            trained_counts(ids, &offsets, labels, &label_offsets, limit)
                .unwrap()
                .is_some()
        };
        assert!(ok(&[1, 2], &[-100, 2], 10));
        assert!(!ok(&[], &[], 10)); // empty
        assert!(!ok(&[1, 10], &[-100, 2], 10)); // id at the limit
        assert!(!ok(&[-1, 2], &[-100, 2], 10)); // negative id
        assert!(!ok(&[1, 2], &[-100], 10)); // lengths differ
        assert!(!ok(&[1, 2], &[-100, -5], 10)); // label neither -100 nor an id
        assert!(!ok(&[1, 2], &[-100, 1 << 40], 10)); // wide label
                                                     // Offsets past the values are refused rows, not a panic.
        assert_eq!(
            trained_counts(&[1i32], &[0, 4], &[1i32], &[0, 4], 10).unwrap(),
            None
        );
        assert!(trained_counts(&[1i32], &[0, 1], &[1i32], &[0], 10).is_err());
    }
}
