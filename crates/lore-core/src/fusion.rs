//! Reciprocal rank fusion: hybrid search ranks a chunk by `Σ weight / (K + rank)` over the
//! ranked lists it appears in (Cormack et al., 2009). Ranks, not scores, are fused, so BM25 and
//! cosine need no common scale.

use std::collections::HashMap;

use crate::model::{ChunkHit, Id};

/// The RRF constant; 60 is the published default and works across collections.
pub const K: f64 = 60.0;

/// A fused hit with the score each list gave it.
#[derive(Debug, Clone)]
pub struct Fused {
    pub hit: ChunkHit,
    pub score: f64,
    /// Per list, the hit's own score in it (None when it was not in that list).
    pub scores: Vec<Option<f64>>,
}

/// Fuses ranked lists (best first) with their weights, best first, at most `top_k`.
pub fn fuse(lists: Vec<(f64, Vec<ChunkHit>)>, top_k: usize) -> Vec<Fused> {
    let n = lists.len();
    let mut fused: HashMap<Id, Fused> = HashMap::new();
    for (list, (weight, hits)) in lists.into_iter().enumerate() {
        for (rank, hit) in hits.into_iter().enumerate() {
            let contribution = weight / (K + rank as f64 + 1.0);
            let own = hit.score;
            let entry = fused.entry(hit.chunk_id).or_insert_with(|| Fused { hit, score: 0.0, scores: vec![None; n] });
            entry.score += contribution;
            entry.scores[list] = Some(own);
        }
    }
    let mut out: Vec<Fused> = fused.into_values().collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.hit.chunk_id.cmp(&b.hit.chunk_id)));
    out.truncate(top_k);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hit(n: u128, score: f64) -> ChunkHit {
        ChunkHit {
            chunk_id: Id::from_u128(n),
            document_id: Id::from_u128(1000 + n),
            knowledge_base_id: Id::from_u128(1),
            filename: format!("{n}.txt"),
            title: None,
            content: String::new(),
            score,
            chunk_index: 0,
            metadata: json!({}),
            parent: None,
        }
    }

    #[test]
    fn agreement_beats_a_single_first_place() {
        let vector = vec![hit(1, 0.9), hit(2, 0.8), hit(3, 0.7)];
        let fulltext = vec![hit(4, 12.0), hit(2, 9.0), hit(5, 3.0)];
        let fused = fuse(vec![(1.0, vector), (1.0, fulltext)], 10);
        assert_eq!(fused[0].hit.chunk_id, Id::from_u128(2), "second in both lists wins");
        assert_eq!(fused[0].scores, vec![Some(0.8), Some(9.0)]);
        assert_eq!(fused.len(), 5);
    }

    #[test]
    fn weights_shift_the_balance() {
        let vector = vec![hit(1, 0.9), hit(2, 0.8)];
        let fulltext = vec![hit(2, 9.0), hit(1, 3.0)];
        assert_eq!(fuse(vec![(2.0, vector.clone()), (1.0, fulltext.clone())], 1)[0].hit.chunk_id, Id::from_u128(1));
        assert_eq!(fuse(vec![(1.0, vector), (2.0, fulltext)], 1)[0].hit.chunk_id, Id::from_u128(2));
    }
}
