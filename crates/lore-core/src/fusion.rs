//! Hybrid search's fusion of ranked lists. Reciprocal rank fusion (the default) ranks a chunk by
//! `Σ weight / (K + rank)` over the lists it appears in (Cormack et al., 2009): ranks, not scores,
//! so BM25 and cosine need no common scale. Weighted fusion scales each list's scores to 0..1 and
//! sums them by weight: it keeps margins that ranks lose (a chunk far ahead by meaning and level
//! by words stays ahead).

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

/// Weighted fusion of normalised scores: each list's scores scaled to 0..1 (min-max over the
/// list; a list of equal scores counts 1 for each), a chunk scored `Σ weight × scaled score`
/// over the lists it is in. Best first, at most `top_k`.
pub fn fuse_scores(lists: Vec<(f64, Vec<ChunkHit>)>, top_k: usize) -> Vec<Fused> {
    let n = lists.len();
    let mut fused: HashMap<Id, Fused> = HashMap::new();
    for (list, (weight, hits)) in lists.into_iter().enumerate() {
        let (lo, hi) =
            hits.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), h| (lo.min(h.score), hi.max(h.score)));
        for hit in hits {
            let own = hit.score;
            let scaled = if hi > lo { (own - lo) / (hi - lo) } else { 1.0 };
            let entry = fused.entry(hit.chunk_id).or_insert_with(|| Fused { hit, score: 0.0, scores: vec![None; n] });
            entry.score += weight * scaled;
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
    fn weighted_fusion_keeps_margins_that_ranks_lose() {
        // A is far ahead by meaning and level with B and C by words; B is first by words.
        let vector = vec![hit(1, 0.95), hit(2, 0.60), hit(3, 0.55), hit(4, 0.20)];
        let fulltext = vec![hit(2, 9.0), hit(3, 8.9), hit(1, 8.8), hit(4, 1.0)];
        let ranked = fuse(vec![(1.0, vector.clone()), (1.0, fulltext.clone())], 4);
        assert_eq!(ranked[0].hit.chunk_id, Id::from_u128(2), "ranks: B, second and first");
        let scored = fuse_scores(vec![(1.0, vector), (1.0, fulltext)], 4);
        assert_eq!(scored[0].hit.chunk_id, Id::from_u128(1), "scores: A's margin counts");
        // A: 1 (top vector) + (8.8 - 1) / (9 - 1) by words.
        assert!((scored[0].score - (1.0 + 7.8 / 8.0)).abs() < 1e-12, "{}", scored[0].score);
        assert_eq!(scored.last().map(|f| f.score), Some(0.0), "last in both lists");
        // One list of equal scores counts each as 1.
        let flat = fuse_scores(vec![(2.0, vec![hit(1, 3.0), hit(2, 3.0)])], 2);
        assert!(flat.iter().all(|f| f.score == 2.0));
    }

    #[test]
    fn weights_shift_the_balance() {
        let vector = vec![hit(1, 0.9), hit(2, 0.8)];
        let fulltext = vec![hit(2, 9.0), hit(1, 3.0)];
        assert_eq!(fuse(vec![(2.0, vector.clone()), (1.0, fulltext.clone())], 1)[0].hit.chunk_id, Id::from_u128(1));
        assert_eq!(fuse(vec![(1.0, vector), (2.0, fulltext)], 1)[0].hit.chunk_id, Id::from_u128(2));
    }
}
