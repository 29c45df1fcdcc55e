//! Minimum-cost assignment (Hungarian algorithm with potentials, O(n²·m)), for matching
//! detections to tracks.
// Index loops mirror the textbook statement of the algorithm.
#![allow(clippy::needless_range_loop)]

/// Cost of a pair that must not be matched.
pub const FORBIDDEN: f64 = f64::INFINITY;

/// Matches rows to columns of `cost` (row-major, `rows × cols`) minimising the total cost;
/// pairs with a forbidden (infinite) cost are never returned. Returns `(row, col)` pairs.
///
/// Gating leaves most pairs forbidden, so the problem splits into independent groups of rows
/// and columns linked by allowed pairs (connected components); each is solved on its own, and a
/// group of one row and one column needs no solving at all.
pub fn assign(cost: &[f64], rows: usize, cols: usize) -> Vec<(usize, usize)> {
    // Union-find over rows (0..rows) and columns (rows..rows + cols).
    let mut parent: Vec<usize> = (0..rows + cols).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for r in 0..rows {
        for c in 0..cols {
            if cost[r * cols + c].is_finite() {
                let (a, b) = (find(&mut parent, r), find(&mut parent, rows + c));
                if a != b {
                    parent[a] = b;
                }
            }
        }
    }
    let mut groups: std::collections::BTreeMap<usize, (Vec<usize>, Vec<usize>)> =
        Default::default();
    for r in 0..rows {
        let root = find(&mut parent, r);
        groups.entry(root).or_default().0.push(r);
    }
    for c in 0..cols {
        let root = find(&mut parent, rows + c);
        groups.entry(root).or_default().1.push(c);
    }
    let mut out = Vec::new();
    let mut sub = Vec::new();
    for (rs, cs) in groups.values() {
        match (rs.len(), cs.len()) {
            (0, _) | (_, 0) => {}
            (1, 1) => out.push((rs[0], cs[0])),
            (n, m) => {
                sub.clear();
                sub.extend(
                    rs.iter()
                        .flat_map(|&r| cs.iter().map(move |&c| cost[r * cols + c])),
                );
                out.extend(dense(&sub, n, m).into_iter().map(|(i, j)| (rs[i], cs[j])));
            }
        }
    }
    out.sort_unstable();
    out
}

/// The Hungarian algorithm on one dense problem.
fn dense(cost: &[f64], rows: usize, cols: usize) -> Vec<(usize, usize)> {
    if rows == 0 || cols == 0 {
        return Vec::new();
    }
    // The algorithm wants rows ≤ cols; transpose otherwise.
    let transposed = rows > cols;
    let (n, m) = if transposed {
        (cols, rows)
    } else {
        (rows, cols)
    };
    // Forbidden pairs get a large finite cost so that a full assignment exists, and are dropped
    // afterwards.
    let finite_max = cost
        .iter()
        .copied()
        .filter(|c| c.is_finite())
        .fold(0.0f64, f64::max);
    let big = (finite_max + 1.0) * (n.max(m) as f64 + 1.0);
    let at = |i: usize, j: usize| {
        let c = if transposed {
            cost[j * cols + i]
        } else {
            cost[i * cols + j]
        };
        if c.is_finite() { c } else { big }
    };
    let (mut u, mut v) = (vec![0.0; n + 1], vec![0.0; m + 1]);
    let (mut p, mut way) = (vec![0usize; m + 1], vec![0usize; m + 1]);
    let (mut minv, mut used) = (vec![f64::INFINITY; m + 1], vec![false; m + 1]);
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0;
        minv.fill(f64::INFINITY);
        used.fill(false);
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0;
            for j in 1..=m {
                if !used[j] {
                    let cur = at(i0 - 1, j - 1) - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=m {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut out = Vec::with_capacity(n);
    for j in 1..=m {
        if p[j] != 0 {
            let (i, jj) = (p[j] - 1, j - 1);
            let (r, c) = if transposed { (jj, i) } else { (i, jj) };
            if cost[r * cols + c].is_finite() {
                out.push((r, c));
            }
        }
    }
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(cost: &[f64], rows: usize, cols: usize) -> f64 {
        // Best total over all injective maps of rows into cols (small sizes only), allowing
        // rows to stay unmatched only when all their pairs are forbidden.
        fn go(
            cost: &[f64],
            rows: usize,
            cols: usize,
            r: usize,
            used: &mut Vec<bool>,
        ) -> (usize, f64) {
            if r == rows {
                return (0, 0.0);
            }
            let mut best = go(cost, rows, cols, r + 1, used);
            for c in 0..cols {
                if !used[c] && cost[r * cols + c].is_finite() {
                    used[c] = true;
                    let (k, s) = go(cost, rows, cols, r + 1, used);
                    used[c] = false;
                    let cand = (k + 1, s + cost[r * cols + c]);
                    if cand.0 > best.0 || (cand.0 == best.0 && cand.1 < best.1) {
                        best = cand;
                    }
                }
            }
            best
        }
        go(cost, rows, cols, 0, &mut vec![false; cols]).1
    }

    #[test]
    fn matches_the_brute_force_optimum() {
        let mut seed = 7u64;
        let mut next = || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) as f64 / (1u64 << 31) as f64
        };
        for (rows, cols) in [(3, 3), (4, 2), (2, 5), (5, 5), (1, 4)] {
            for _ in 0..50 {
                let cost: Vec<f64> = (0..rows * cols)
                    .map(|_| {
                        if next() < 0.2 {
                            FORBIDDEN
                        } else {
                            (next() * 100.0).round()
                        }
                    })
                    .collect();
                let pairs = assign(&cost, rows, cols);
                let total: f64 = pairs.iter().map(|&(r, c)| cost[r * cols + c]).sum();
                assert!(
                    (total - brute(&cost, rows, cols)).abs() < 1e-9,
                    "{rows}×{cols}: {pairs:?}"
                );
            }
        }
    }
}
