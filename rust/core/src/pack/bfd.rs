//! Best-fit-decreasing bin packing over the whole dataset.
//!
//! Items (documents, or DPO pairs that must stay together) are placed longest first, each into
//! the open bin whose free space is the smallest that still fits it; a new bin is opened when
//! none fits. Free space is indexed by a segment tree over 0..=capacity, so each placement costs
//! O(log capacity) and a million items pack in well under a second. Ties in length are ordered
//! by a seeded shuffle, so the result is deterministic for a given seed.

use crate::error::{Error, Result};

/// Marks which free-space values have at least one open bin, and finds the smallest marked
/// value at or above a query.
struct FreeSpaceIndex {
    size: usize,
    // tree[i] is true when any leaf under node i is marked.
    tree: Vec<bool>,
}

impl FreeSpaceIndex {
    fn new(max_value: usize) -> Self {
        let size = (max_value + 1).next_power_of_two();
        FreeSpaceIndex {
            size,
            tree: vec![false; 2 * size],
        }
    }

    fn set(&mut self, value: usize, marked: bool) {
        let mut node = self.size + value;
        self.tree[node] = marked;
        while node > 1 {
            node /= 2;
            self.tree[node] = self.tree[2 * node] || self.tree[2 * node + 1];
        }
    }

    /// The smallest marked value >= `min`.
    fn first_at_or_above(&self, min: usize) -> Option<usize> {
        if min >= self.size {
            return None;
        }
        // Walk up from the leaf until a right sibling subtree holds a marked value.
        let mut node = self.size + min;
        if self.tree[node] {
            return Some(min);
        }
        loop {
            if node == 1 {
                return None;
            }
            if node % 2 == 0 && self.tree[node + 1] {
                node += 1;
                break;
            }
            node /= 2;
        }
        while node < self.size {
            node = if self.tree[2 * node] {
                2 * node
            } else {
                2 * node + 1
            };
        }
        Some(node - self.size)
    }
}

/// SplitMix64: a tiny, well-mixed generator for the seeded tie-break order.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Packs items of the given lengths into bins of `capacity`; returns, for each bin in the order
/// bins were opened, the indices of its items in the order they were placed.
///
/// Every item must be 1..=capacity long: callers drop or truncate over-long items first.
pub fn best_fit_decreasing(lengths: &[u32], capacity: u32, seed: u64) -> Result<Vec<Vec<u32>>> {
    if capacity == 0 {
        return Err(Error::InvalidArgument("capacity must be positive".into()));
    }
    if let Some((i, &len)) = lengths
        .iter()
        .enumerate()
        .find(|(_, &len)| len == 0 || len > capacity)
    {
        return Err(Error::InvalidArgument(format!(
            "item {i} has length {len}, outside 1..={capacity}"
        )));
    }
    let mut state = seed;
    let keys: Vec<u64> = (0..lengths.len()).map(|_| splitmix64(&mut state)).collect();
    let mut order: Vec<u32> = (0..lengths.len() as u32).collect();
    order.sort_unstable_by(|&x, &y| {
        lengths[y as usize]
            .cmp(&lengths[x as usize])
            .then(keys[x as usize].cmp(&keys[y as usize]))
            .then(x.cmp(&y))
    });

    let capacity = capacity as usize;
    let mut index = FreeSpaceIndex::new(capacity);
    // Open bins grouped by free space; the most recently touched bin is used first.
    let mut bins_by_free: Vec<Vec<u32>> = vec![Vec::new(); capacity + 1];
    let mut bins: Vec<Vec<u32>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    for item in order {
        let len = lengths[item as usize] as usize;
        let bin = match index.first_at_or_above(len) {
            Some(space) => {
                let stack = &mut bins_by_free[space];
                let bin = stack.pop().expect("indexed free space has a bin");
                if stack.is_empty() {
                    index.set(space, false);
                }
                bin as usize
            }
            None => {
                bins.push(Vec::new());
                free.push(capacity);
                bins.len() - 1
            }
        };
        bins[bin].push(item);
        free[bin] -= len;
        let space = free[bin];
        if space > 0 {
            if bins_by_free[space].is_empty() {
                index.set(space, true);
            }
            bins_by_free[space].push(bin as u32);
        }
    }
    Ok(bins)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(lengths: &[u32], capacity: u32, bins: &[Vec<u32>]) {
        let mut seen = vec![false; lengths.len()];
        for bin in bins {
            let total: u32 = bin.iter().map(|&i| lengths[i as usize]).sum();
            assert!(total <= capacity);
            for &i in bin {
                assert!(!seen[i as usize], "item {i} packed twice");
                seen[i as usize] = true;
            }
        }
        assert!(seen.iter().all(|&s| s), "an item was lost");
    }

    #[test]
    fn packs_every_item_once_within_capacity() {
        let mut state = 7u64;
        let lengths: Vec<u32> = (0..5000)
            .map(|_| 1 + (splitmix64(&mut state) % 900) as u32)
            .collect();
        let bins = best_fit_decreasing(&lengths, 1024, 3).unwrap();
        check(&lengths, 1024, &bins);
        let total: u64 = lengths.iter().map(|&l| l as u64).sum();
        let lower_bound = total.div_ceil(1024) as usize;
        assert!(bins.len() >= lower_bound);
        assert!((bins.len() as f64) < lower_bound as f64 * 1.02);
    }

    #[test]
    fn best_fit_picks_the_tightest_bin() {
        // 6 opens bin 0 (free 4), 5 opens bin 1 (free 5), then 4 must go to bin 0 (tightest).
        let bins = best_fit_decreasing(&[6, 5, 4], 10, 0).unwrap();
        assert_eq!(bins, vec![vec![0, 2], vec![1]]);
    }

    #[test]
    fn deterministic_per_seed() {
        let lengths = vec![3u32; 50];
        let a = best_fit_decreasing(&lengths, 10, 1).unwrap();
        assert_eq!(a, best_fit_decreasing(&lengths, 10, 1).unwrap());
        assert_ne!(a, best_fit_decreasing(&lengths, 10, 2).unwrap());
    }

    #[test]
    fn refuses_items_that_cannot_fit() {
        assert!(best_fit_decreasing(&[5, 11], 10, 0).is_err());
        assert!(best_fit_decreasing(&[0], 10, 0).is_err());
        assert!(best_fit_decreasing(&[], 10, 0).unwrap().is_empty());
    }

    #[test]
    fn free_space_index_finds_the_next_marked_value() {
        let mut index = FreeSpaceIndex::new(20);
        assert_eq!(index.first_at_or_above(0), None);
        index.set(7, true);
        index.set(15, true);
        assert_eq!(index.first_at_or_above(0), Some(7));
        assert_eq!(index.first_at_or_above(7), Some(7));
        assert_eq!(index.first_at_or_above(8), Some(15));
        assert_eq!(index.first_at_or_above(16), None);
        index.set(7, false);
        assert_eq!(index.first_at_or_above(0), Some(15));
    }
}
