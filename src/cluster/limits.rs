//! The bounds of k-means' counts (`k`, `iterations`, `restarts`): one rule for the `kmeans`
//! stage (checked at planning, with the file's line) and for the library's `KMeansParams`
//! (what `ktlab kmeans` runs), so the two never disagree. Known to builds without libtorch.

/// At most this many clusters.
pub const MAX_K: usize = 1_000_000;
/// At most this many Lloyd iterations per restart.
pub const MAX_ITERATIONS: usize = 100_000;
/// At most this many restarts.
pub const MAX_RESTARTS: usize = 1_000;

/// The first count out of its bounds: the parameter's name and why.
pub fn check_counts(k: usize, iterations: usize, restarts: usize) -> Result<(), (&'static str, String)> {
    if k == 0 || k > MAX_K {
        return Err(("k", format!("expected 1..={MAX_K} clusters, found {k}")));
    }
    if iterations == 0 || iterations > MAX_ITERATIONS {
        return Err(("iterations", format!("expected 1..={MAX_ITERATIONS}, found {iterations}")));
    }
    if restarts == 0 || restarts > MAX_RESTARTS {
        return Err(("restarts", format!("expected 1..={MAX_RESTARTS}, found {restarts}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_name_the_parameter() {
        assert_eq!(check_counts(10, 20, 1), Ok(()));
        assert_eq!(check_counts(0, 20, 1).unwrap_err().0, "k");
        assert_eq!(
            check_counts(MAX_K + 1, 20, 1).unwrap_err().1,
            "expected 1..=1000000 clusters, found 1000001"
        );
        assert_eq!(check_counts(4, 0, 1).unwrap_err().0, "iterations");
        assert_eq!(check_counts(4, 20, MAX_RESTARTS + 1).unwrap_err().0, "restarts");
    }
}
