//! A cross-encoder run in-process on the built-in encoder's kernels: BERT and XLM-RoBERTa
//! sequence classification with one output (ms-marco-MiniLM, bge-reranker-base, bge-reranker-v2-m3)
//! from a Hugging Face format directory in the model directory. It reads the query and a passage
//! together, which an embedding model never does, and scores how well the passage answers.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;

use crate::encoder::Encoder;
use crate::kernel::DenseMatrix;
use crate::rerank::Reranker;
use crate::{EmbedError, ModelError};

/// The classification head: a dense layer with tanh over the first token's state, then one
/// output. BERT names it `pooler.dense` and `classifier`; RoBERTa `classifier.dense` and
/// `classifier.out_proj`.
struct Head {
    dense: DenseMatrix,
    dense_bias: Vec<f32>,
    out: Vec<f32>,
    out_bias: f32,
}

pub struct CrossEncoder {
    encoder: Encoder,
    head: Head,
}

impl CrossEncoder {
    pub fn load(dir: &Path) -> Result<CrossEncoder, ModelError> {
        let (encoder, mut tensors, config) = crate::hf::load_parts(dir)?;
        let labels = config["id2label"].as_object().map_or(1, |m| m.len());
        if labels != 1 {
            return Err(ModelError::Invalid(format!(
                "a reranker has one output; this model classifies into {labels} labels"
            )));
        }
        let hidden = encoder.shape.hidden;
        let (dense_name, out_name) = match config["model_type"].as_str().unwrap_or("bert") {
            "bert" => ("pooler.dense", "classifier"),
            _ => ("classifier.dense", "classifier.out_proj"),
        };
        let (dense, dense_bias) = tensors.linear(dense_name, hidden, hidden)?;
        let out = tensors.take(&format!("{out_name}.weight"), hidden)?[..hidden].to_vec();
        let out_bias = tensors.take(&format!("{out_name}.bias"), 1)?[0];
        let head = Head { dense, dense_bias, out, out_bias };
        Ok(CrossEncoder { encoder, head })
    }

    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// Each passage's relevance to `query`, 0 to 1 (the sigmoid of the head's logit).
    pub fn score(&self, query: &str, passages: &[&str]) -> Vec<f32> {
        if passages.is_empty() {
            return Vec::new();
        }
        let states = self.encoder.pair_states(query, passages);
        let mut hidden = Vec::new();
        self.head.dense.matmul(&self.head.dense_bias, &states, passages.len(), &mut hidden);
        hidden
            .chunks_exact(self.encoder.shape.hidden)
            .map(|h| {
                let logit = h.iter().zip(&self.head.out).map(|(x, w)| x.tanh() * w).sum::<f32>() + self.head.out_bias;
                1.0 / (1.0 + (-logit).exp())
            })
            .collect()
    }
}

/// Loaded cross-encoders, shared and dropped when none uses them (as encoders are).
static LOADED: Mutex<Vec<(PathBuf, Weak<CrossEncoder>)>> = Mutex::new(Vec::new());

pub fn load_cross_encoder(dir: &Path) -> Result<Arc<CrossEncoder>, ModelError> {
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    loaded.retain(|(_, w)| w.strong_count() > 0);
    if let Some(c) = loaded.iter().find(|(p, _)| p == dir).and_then(|(_, w)| w.upgrade()) {
        return Ok(c);
    }
    let cross = Arc::new(CrossEncoder::load(dir)?);
    loaded.push((dir.to_path_buf(), Arc::downgrade(&cross)));
    Ok(cross)
}

/// A cross-encoder as a [`Reranker`], run on the blocking pool.
pub struct LocalReranker {
    name: String,
    cross: Arc<CrossEncoder>,
}

impl LocalReranker {
    pub fn new(name: String, cross: Arc<CrossEncoder>) -> Self {
        LocalReranker { name, cross }
    }
}

#[async_trait]
impl Reranker for LocalReranker {
    fn name(&self) -> &str {
        &self.name
    }

    async fn rerank(&self, query: &str, passages: &[String]) -> Result<Vec<f32>, EmbedError> {
        let (cross, query, passages) = (self.cross.clone(), query.to_string(), passages.to_vec());
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = passages.iter().map(String::as_str).collect();
            cross.score(&query, &refs)
        })
        .await
        .map_err(|e| EmbedError::ModelUnavailable(format!("the local reranker stopped: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::tiny_cross_encoder as tiny;

    #[test]
    fn loads_a_bert_cross_encoder_and_scores_pairs_through_its_head() {
        let dir = tempfile::tempdir().expect("dir");
        tiny(dir.path(), "bert", 1);
        let cross = CrossEncoder::load(dir.path()).expect("loads");
        let passages = ["the refund policy thirty days", "the cat", "退款政策三十天", "猫"];
        let scores = cross.score("refund policy", &passages);
        assert_eq!(scores.len(), 4);
        assert!(scores.iter().all(|s| *s > 0.0 && *s < 1.0), "{scores:?}");
        assert_eq!(scores, cross.score("refund policy", &passages), "deterministic");
        // One pair alone scores as it does in a batch.
        let alone = cross.score("refund policy", &[passages[2]]);
        assert!((alone[0] - scores[2]).abs() < 1e-5);

        // The head, by hand: tanh(pooler · state) · classifier, then the sigmoid.
        let t = crate::hf::load_parts(dir.path()).expect("parts").1;
        let mut t = t;
        let pooler_w = t.take("pooler.dense.weight", 64).expect("pooler");
        let pooler_b = t.take("pooler.dense.bias", 8).expect("bias");
        let class_w = t.take("classifier.weight", 8).expect("classifier");
        let class_b = t.take("classifier.bias", 1).expect("bias")[0];
        let states = cross.encoder().pair_states("refund policy", &passages);
        for (i, state) in states.chunks_exact(8).enumerate() {
            let pooled: Vec<f32> =
                (0..8).map(|r| (0..8).map(|c| pooler_w[r * 8 + c] * state[c]).sum::<f32>() + pooler_b[r]).collect();
            let logit: f32 = pooled.iter().zip(&class_w).map(|(p, w)| p.tanh() * w).sum::<f32>() + class_b;
            let want = 1.0 / (1.0 + (-logit).exp());
            assert!((scores[i] - want).abs() < 1e-5, "pair {i}: {} vs {want}", scores[i]);
        }
        // The passage is the second segment: read as token type 0, the pair scores otherwise.
        let mut one_type = CrossEncoder::load(dir.path()).expect("loads");
        one_type.encoder.token_type_second = None;
        let flat = one_type.score("refund policy", &passages);
        assert!(flat.iter().zip(&scores).all(|(a, b)| (a - b).abs() > 1e-6), "{flat:?} vs {scores:?}");
    }

    #[test]
    fn loads_an_xlm_roberta_cross_encoder_with_its_own_head_and_pair_layout() {
        let dir = tempfile::tempdir().expect("dir");
        tiny(dir.path(), "xlm-roberta", 1);
        let cross = CrossEncoder::load(dir.path()).expect("loads");
        assert!(cross.encoder().token_type_second.is_none(), "one token type");
        let passages = ["the refund policy", "猫", "退款政策"];
        let scores = cross.score("refund", &passages);
        assert!(scores.iter().all(|s| *s > 0.0 && *s < 1.0), "{scores:?}");
        let mut t = crate::hf::load_parts(dir.path()).expect("parts").1;
        let dense_w = t.take("classifier.dense.weight", 64).expect("dense");
        let dense_b = t.take("classifier.dense.bias", 8).expect("bias");
        let out_w = t.take("classifier.out_proj.weight", 8).expect("out");
        let out_b = t.take("classifier.out_proj.bias", 1).expect("bias")[0];
        let states = cross.encoder().pair_states("refund", &passages);
        for (i, state) in states.chunks_exact(8).enumerate() {
            let logit: f32 = (0..8)
                .map(|r| ((0..8).map(|c| dense_w[r * 8 + c] * state[c]).sum::<f32>() + dense_b[r]).tanh() * out_w[r])
                .sum::<f32>()
                + out_b;
            assert!((scores[i] - 1.0 / (1.0 + (-logit).exp())).abs() < 1e-5, "pair {i}");
        }
    }

    #[test]
    fn a_classifier_of_several_labels_is_not_a_reranker() {
        let dir = tempfile::tempdir().expect("dir");
        tiny(dir.path(), "bert", 3);
        let err = CrossEncoder::load(dir.path()).err().expect("refused");
        assert!(err.to_string().contains("one output"), "{err}");
    }
}
