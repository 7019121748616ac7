//! Interval arithmetic between transcribed segments and detected speech (seconds).

/// Sort half-open intervals and merge the ones that overlap or touch; empty ones are dropped.
pub fn merge_intervals(mut spans: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    spans.retain(|&(a, b)| b > a);
    spans.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(spans.len());
    for (a, b) in spans {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
}

/// Total length of disjoint intervals.
pub fn total_length(spans: &[(f64, f64)]) -> f64 {
    spans.iter().map(|&(a, b)| b - a).sum()
}

/// Length of the intersection of two sorted, disjoint interval lists (two-pointer sweep).
pub fn overlap_length(xs: &[(f64, f64)], ys: &[(f64, f64)]) -> f64 {
    let (mut i, mut j, mut total) = (0, 0, 0.0);
    while i < xs.len() && j < ys.len() {
        let lo = xs[i].0.max(ys[j].0);
        let hi = xs[i].1.min(ys[j].1);
        if hi > lo {
            total += hi - lo;
        }
        if xs[i].1 < ys[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    total
}

/// Length of the intersection of `[a, b)` with sorted, disjoint `spans`.
pub fn overlap_with(a: f64, b: f64, spans: &[(f64, f64)]) -> f64 {
    // First span that ends after `a`.
    let first = spans.partition_point(|&(_, end)| end <= a);
    let mut total = 0.0;
    for &(s, e) in &spans[first..] {
        if s >= b {
            break;
        }
        total += e.min(b) - s.max(a);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_sorts_and_joins() {
        let merged = merge_intervals(vec![
            (5.0, 6.0),
            (0.0, 1.0),
            (0.5, 2.0),
            (2.0, 3.0),
            (4.0, 4.0),
        ]);
        assert_eq!(merged, vec![(0.0, 3.0), (5.0, 6.0)]);
        assert_eq!(total_length(&merged), 4.0);
    }

    #[test]
    fn overlaps() {
        let xs = [(0.0, 2.0), (3.0, 5.0)];
        let ys = [(1.0, 4.0), (4.5, 10.0)];
        assert_eq!(overlap_length(&xs, &ys), 1.0 + 1.0 + 0.5);
        assert_eq!(overlap_with(1.5, 4.75, &ys), 2.5 + 0.25);
        assert_eq!(overlap_with(10.0, 11.0, &ys), 0.0);
        assert_eq!(overlap_with(-1.0, 0.5, &ys), 0.0);
    }
}
