//! Dependency order of the stages of a variant, with cycles named in full.
use indexmap::IndexMap;

/// Orders `edges` (stage -> the stages it reads) so that every stage follows its
/// inputs. On a cycle, returns it as `[a, b, c, a]`.
pub fn topo_order(edges: &IndexMap<String, Vec<String>>) -> Result<Vec<String>, Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(
        n: &str,
        edges: &IndexMap<String, Vec<String>>,
        marks: &mut IndexMap<String, Mark>,
        stack: &mut Vec<String>,
        out: &mut Vec<String>,
    ) -> Result<(), Vec<String>> {
        match marks.get(n).copied() {
            Some(Mark::Done) | None => return Ok(()),
            Some(Mark::Active) => {
                let start = stack.iter().position(|s| s == n).unwrap_or(0);
                let mut cycle: Vec<String> = stack[start..].to_vec();
                cycle.push(n.to_string());
                return Err(cycle);
            }
            Some(Mark::New) => {}
        }
        marks.insert(n.to_string(), Mark::Active);
        stack.push(n.to_string());
        for d in edges.get(n).map(Vec::as_slice).unwrap_or(&[]) {
            visit(d, edges, marks, stack, out)?;
        }
        stack.pop();
        marks.insert(n.to_string(), Mark::Done);
        out.push(n.to_string());
        Ok(())
    }
    let mut marks: IndexMap<String, Mark> = edges.keys().map(|k| (k.clone(), Mark::New)).collect();
    let mut out = Vec::new();
    for n in edges.keys() {
        visit(n, edges, &mut marks, &mut Vec::new(), &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn g(e: &[(&str, &[&str])]) -> IndexMap<String, Vec<String>> {
        e.iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn names_whole_cycle() {
        let err = topo_order(&g(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &[])])).unwrap_err();
        assert_eq!(err, vec!["a", "b", "c", "a"]);
        assert_eq!(topo_order(&g(&[("a", &["a"])])).unwrap_err(), vec!["a", "a"]);
    }

    proptest! {
        /// Edges only to earlier nodes form a DAG: the order respects every edge.
        #[test]
        fn order_respects_edges(n in 1usize..12, seed in any::<u64>()) {
            let mut edges = IndexMap::new();
            let mut s = seed;
            for i in (0..n).rev() {
                let mut deps = Vec::new();
                for j in 0..i {
                    s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    if s >> 62 == 0 { deps.push(format!("n{j}")); }
                }
                edges.insert(format!("n{i}"), deps);
            }
            let order = topo_order(&edges).unwrap();
            prop_assert_eq!(order.len(), n);
            for (k, deps) in &edges {
                let pk = order.iter().position(|x| x == k).unwrap();
                for d in deps {
                    prop_assert!(order.iter().position(|x| x == d).unwrap() < pk);
                }
            }
        }
    }
}
