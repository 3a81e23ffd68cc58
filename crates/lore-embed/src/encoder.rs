//! A BERT-family text encoder (BERT, XLM-RoBERTa) with 4-bit weights: the forward pass, mean
//! pooling and L2 normalisation. Texts of a batch run concatenated, without padding: the
//! token-wise matrix products stream each weight once for the whole batch, and attention is
//! confined to each text's own tokens.

use rayon::prelude::*;

use crate::kernel::{DenseMatrix, PARALLEL_TOKENS, QuantMatrix, rows_mut};
use crate::tokenizer::Tokenizer;

/// Which side of retrieval a text is on: models like e5 embed them with different prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Query,
    Passage,
}

#[derive(Debug, Clone)]
pub struct EncoderShape {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub max_positions: usize,
    pub layer_norm_eps: f32,
}

#[derive(Debug)]
pub struct Layer {
    pub q: DenseMatrix,
    pub q_bias: Vec<f32>,
    pub k: DenseMatrix,
    pub k_bias: Vec<f32>,
    pub v: DenseMatrix,
    pub v_bias: Vec<f32>,
    pub attn_out: DenseMatrix,
    pub attn_out_bias: Vec<f32>,
    pub attn_norm: (Vec<f32>, Vec<f32>),
    pub ffn_in: DenseMatrix,
    pub ffn_in_bias: Vec<f32>,
    pub ffn_out: DenseMatrix,
    pub ffn_out_bias: Vec<f32>,
    pub out_norm: (Vec<f32>, Vec<f32>),
}

/// Word embeddings `[vocab, hidden]`: the largest table, kept 4-bit when the model came that way.
#[derive(Debug)]
pub enum WordEmbeddings {
    Quant(QuantMatrix),
    Dense { hidden: usize, table: Vec<f32> },
}

impl WordEmbeddings {
    fn row_into(&self, id: usize, out: &mut [f32]) {
        match self {
            WordEmbeddings::Quant(q) => q.row_into(id, out),
            WordEmbeddings::Dense { hidden, table } => match table.get(id * hidden..(id + 1) * hidden) {
                Some(row) => out.copy_from_slice(row),
                None => out.fill(0.0),
            },
        }
    }
}

/// How token states become one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    Mean,
    /// The first token's state (`[CLS]`), as bge models are trained.
    Cls,
}

#[derive(Debug)]
pub struct Encoder {
    pub shape: EncoderShape,
    pub tokenizer: Tokenizer,
    pub word: WordEmbeddings,
    pub pooling: Pooling,
    /// Content tokens per model input (the rest of a longer text goes to further windows).
    pub max_tokens: usize,
    /// Position embeddings `[max_positions, hidden]`, row 0 for the first token.
    pub position: Vec<f32>,
    /// The token-type-0 embedding `[hidden]`.
    pub token_type: Vec<f32>,
    /// The token-type-1 embedding, for the second text of a pair (BERT); models with one token
    /// type (XLM-R) have none.
    pub token_type_second: Option<Vec<f32>>,
    pub embed_norm: (Vec<f32>, Vec<f32>),
    pub layers: Vec<Layer>,
    pub query_prefix: String,
    pub passage_prefix: String,
}

/// Tokens per forward pass: bounds memory for any batch while keeping the matrix products wide.
const TOKENS_PER_PASS: usize = 8192;

/// One model input: token ids with the model's markers, whose text it belongs to, and where its
/// second segment (a cross-encoder's passage) begins (`ids.len()` without one).
struct Window {
    text: usize,
    ids: Vec<u32>,
    second: usize,
}

impl Window {
    /// Content tokens, the window's weight in its text's average.
    fn weight(&self) -> f32 {
        self.ids.len().saturating_sub(2).max(1) as f32
    }
}

impl Encoder {
    pub fn dimensions(&self) -> usize {
        self.shape.hidden
    }

    /// Model tokens of `text` with its prefix and the sentence markers, as the model would see them.
    pub fn count_tokens(&self, text: &str, kind: InputKind) -> usize {
        self.tokenizer.encode(&format!("{}{text}", self.prefix(kind))).len() + 2
    }

    /// Model tokens of `text` alone: no prefix, no markers. What chunk sizes in tokens count.
    pub fn text_tokens(&self, text: &str) -> usize {
        self.tokenizer.encode(text).len()
    }

    fn prefix(&self, kind: InputKind) -> &str {
        match kind {
            InputKind::Query => &self.query_prefix,
            InputKind::Passage => &self.passage_prefix,
        }
    }

    /// The most tokens the model reads at once, its markers left out: a longer text is embedded
    /// window by window.
    pub fn window(&self) -> usize {
        self.max_tokens.clamp(1, self.shape.max_positions.saturating_sub(2).max(1))
    }

    /// L2-normalised embeddings, one per text. A text longer than the model's window is cut into
    /// windows whose mean-pooled vectors are averaged, weighted by their token counts.
    pub fn embed(&self, texts: &[&str], kind: InputKind) -> Vec<Vec<f32>> {
        let per_window = self.window();
        let (open, close) = self.tokenizer.markers();
        let window = |text: usize, content: &[u32]| {
            let mut ids = Vec::with_capacity(content.len() + 2);
            ids.push(open);
            ids.extend_from_slice(content);
            ids.push(close);
            Window { text, second: ids.len(), ids }
        };
        let tokenize = |(text, t): (usize, &&str)| {
            let ids = self.tokenizer.encode(&format!("{}{t}", self.prefix(kind)));
            let windows: Vec<Window> = ids.chunks(per_window).map(|chunk| window(text, chunk)).collect();
            if windows.is_empty() { vec![window(text, &[])] } else { windows }
        };
        let windows: Vec<Window> = if texts.len() >= 8 {
            texts.par_iter().enumerate().map(tokenize).flatten().collect()
        } else {
            texts.iter().enumerate().flat_map(tokenize).collect()
        };

        let hidden = self.shape.hidden;
        let mut sums = vec![vec![0f32; hidden]; texts.len()];
        for pass in passes(&windows) {
            let pooled = self.forward(pass, self.pooling);
            for (window, mean) in pass.iter().zip(pooled.chunks_exact(hidden)) {
                for (s, m) in sums[window.text].iter_mut().zip(mean) {
                    *s += window.weight() * m;
                }
            }
        }
        for v in &mut sums {
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
            v.iter_mut().for_each(|x| *x /= norm);
        }
        sums
    }

    /// The final hidden state of each pair's first token (`[CLS]`, `<s>`), `[pairs, hidden]`: what
    /// a cross-encoder's head reads. A pair is laid out as its model was trained: `[CLS] query
    /// [SEP] passage [SEP]` with the passage as token type 1 (BERT), `<s> query </s></s> passage
    /// </s>` (XLM-R). The query keeps at most a quarter of the window; the passage is cut to fit.
    pub fn pair_states(&self, query: &str, passages: &[&str]) -> Vec<f32> {
        let windows = self.pairs(query, passages);
        let mut states = Vec::with_capacity(passages.len() * self.shape.hidden);
        for pass in passes(&windows) {
            states.extend(self.forward(pass, Pooling::Cls));
        }
        states
    }

    fn pairs(&self, query: &str, passages: &[&str]) -> Vec<Window> {
        let (open, close) = self.tokenizer.markers();
        let bert = matches!(self.tokenizer, crate::tokenizer::Tokenizer::WordPiece(_));
        let window = self.shape.max_positions.max(8);
        let mut q = self.tokenizer.encode(query);
        q.truncate(window / 4);
        passages
            .iter()
            .enumerate()
            .map(|(text, passage)| {
                let mut ids = vec![open];
                ids.extend_from_slice(&q);
                ids.push(close);
                if !bert {
                    ids.push(close);
                }
                let second = ids.len();
                let room = window.saturating_sub(ids.len() + 1);
                ids.extend(self.tokenizer.encode(passage).into_iter().take(room));
                ids.push(close);
                Window { text, ids, second }
            })
            .collect()
    }

    /// Pooled final hidden states, `[windows, hidden]`.
    fn forward(&self, windows: &[Window], pooling: Pooling) -> Vec<f32> {
        let s = &self.shape;
        let (hidden, heads) = (s.hidden, s.heads);
        let head_dim = hidden / heads;
        // Each token's id, position and segment, and each window's [start, end) token range.
        let mut ids = Vec::new();
        let mut positions = Vec::new();
        let mut second = Vec::new();
        let mut segments = Vec::with_capacity(windows.len());
        for w in windows {
            let start = ids.len();
            ids.extend_from_slice(&w.ids);
            positions.extend(0..w.ids.len());
            second.extend((0..w.ids.len()).map(|i| i >= w.second));
            segments.push(start..ids.len());
        }
        let tokens = ids.len();

        let mut x = vec![0f32; tokens * hidden];
        let parallel = tokens >= PARALLEL_TOKENS;
        rows_mut(parallel, &mut x, hidden, |t, row| {
            self.word.row_into(ids[t] as usize, row);
            let p = &self.position[positions[t] * hidden..(positions[t] + 1) * hidden];
            let ty = match (&self.token_type_second, second[t]) {
                (Some(second), true) => second,
                _ => &self.token_type,
            };
            for ((r, p), ty) in row.iter_mut().zip(p).zip(ty) {
                *r += p + ty;
            }
        });
        layer_norm(parallel, &mut x, None, &self.embed_norm, hidden, s.layer_norm_eps);

        let (mut q, mut k, mut v, mut ctx, mut out, mut mid) =
            (Vec::new(), Vec::new(), Vec::new(), vec![0f32; tokens * hidden], Vec::new(), Vec::new());
        let scale = 1.0 / (head_dim as f32).sqrt();
        for layer in &self.layers {
            layer.q.matmul(&layer.q_bias, &x, tokens, &mut q);
            layer.k.matmul(&layer.k_bias, &x, tokens, &mut k);
            layer.v.matmul(&layer.v_bias, &x, tokens, &mut v);
            attention(parallel, &q, &k, &v, &mut ctx, &segments, heads, hidden, scale);
            layer.attn_out.matmul(&layer.attn_out_bias, &ctx, tokens, &mut out);
            layer_norm(parallel, &mut x, Some(&out), &layer.attn_norm, hidden, s.layer_norm_eps);

            layer.ffn_in.matmul(&layer.ffn_in_bias, &x, tokens, &mut mid);
            rows_mut(parallel, &mut mid, 4096, |_, c| c.iter_mut().for_each(|v| *v = gelu(*v)));
            layer.ffn_out.matmul(&layer.ffn_out_bias, &mid, tokens, &mut out);
            layer_norm(parallel, &mut x, Some(&out), &layer.out_norm, hidden, s.layer_norm_eps);
        }

        let mut pooled = vec![0f32; segments.len() * hidden];
        rows_mut(parallel, &mut pooled, hidden, |i, p| {
            if pooling == Pooling::Cls {
                let t = segments[i].start;
                p.copy_from_slice(&x[t * hidden..(t + 1) * hidden]);
                return;
            }
            for t in segments[i].clone() {
                for (a, b) in p.iter_mut().zip(&x[t * hidden..(t + 1) * hidden]) {
                    *a += b;
                }
            }
            let n = segments[i].len() as f32;
            p.iter_mut().for_each(|v| *v /= n);
        });
        pooled
    }
}

/// Consecutive runs of windows of at most [`TOKENS_PER_PASS`] tokens (a longer window alone).
fn passes(windows: &[Window]) -> Vec<&[Window]> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < windows.len() {
        let mut end = start;
        let mut tokens = 0;
        while end < windows.len() && (end == start || tokens + windows[end].ids.len() <= TOKENS_PER_PASS) {
            tokens += windows[end].ids.len();
            end += 1;
        }
        out.push(&windows[start..end]);
        start = end;
    }
    out
}

/// Scaled dot-product attention of each text's tokens over its own tokens, head by head:
/// `ctx_h = softmax(Q_h K_hᵀ · scale) V_h`, texts in parallel.
#[allow(clippy::too_many_arguments)]
fn attention(
    parallel: bool, q: &[f32], k: &[f32], v: &[f32], ctx: &mut [f32], segments: &[std::ops::Range<usize>],
    heads: usize, hidden: usize, scale: f32,
) {
    let head_dim = hidden / heads;
    let mut parts = Vec::with_capacity(segments.len());
    let mut rest = ctx;
    for segment in segments {
        let (part, tail) = rest.split_at_mut(segment.len() * hidden);
        parts.push((segment.clone(), part));
        rest = tail;
    }
    let one = |(segment, out): (std::ops::Range<usize>, &mut [f32])| {
        let n = segment.len();
        let base = segment.start * hidden;
        let mut scores = vec![0f32; n * n];
        for h in 0..heads {
            let (qh, kh, vh) = (&q[base + h * head_dim..], &k[base + h * head_dim..], &v[base + h * head_dim..]);
            crate::kernel::strided_gemm(
                n,
                head_dim,
                n,
                scale,
                qh,
                (hidden, 1),
                kh,
                (1, hidden),
                0.0,
                &mut scores,
                (n, 1),
            );
            for row in scores.chunks_exact_mut(n) {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0.0;
                for p in row.iter_mut() {
                    *p = (*p - max).exp();
                    sum += *p;
                }
                let inv = 1.0 / sum;
                row.iter_mut().for_each(|p| *p *= inv);
            }
            let oh = &mut out[h * head_dim..];
            crate::kernel::strided_gemm(n, n, head_dim, 1.0, &scores, (n, 1), vh, (hidden, 1), 0.0, oh, (hidden, 1));
        }
    };
    if parallel {
        parts.into_par_iter().for_each(one);
    } else {
        parts.into_iter().for_each(one);
    }
}

/// `x = LayerNorm(x + residual)` row by row.
fn layer_norm(
    parallel: bool, x: &mut [f32], residual: Option<&[f32]>, (weight, bias): &(Vec<f32>, Vec<f32>), hidden: usize,
    eps: f32,
) {
    rows_mut(parallel, x, hidden, |t, row| {
        if let Some(r) = residual {
            row.iter_mut().zip(&r[t * hidden..(t + 1) * hidden]).for_each(|(a, b)| *a += b);
        }
        let mean = row.iter().sum::<f32>() / hidden as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / hidden as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, w), b) in row.iter_mut().zip(weight).zip(bias) {
            *v = (*v - mean) * inv * w + b;
        }
    });
}

/// GELU with the exact error function, as BERT defines it; `erf` by Abramowitz and Stegun 7.1.26
/// (absolute error below 1.5e-7, far inside what 4-bit weights change), one `exp` per value.
fn gelu(x: f32) -> f32 {
    let z = x * std::f32::consts::FRAC_1_SQRT_2;
    let a = z.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let erf = 1.0 - poly * (-a * a).exp();
    0.5 * x * (1.0 + erf.copysign(z))
}

#[cfg(test)]
mod tests {
    #[test]
    fn pairs_are_laid_out_as_each_family_was_trained() {
        let dir = tempfile::tempdir().expect("dir");
        crate::testing::tiny_cross_encoder(dir.path(), "bert", 1);
        let bert = crate::hf::load(dir.path()).expect("bert");
        let pair = &bert.pairs("refund policy", &["the cat"])[0];
        // [CLS] refund policy [SEP] | the cat [SEP]
        assert_eq!(pair.ids, vec![2, 4, 5, 3, 9, 8, 3]);
        assert_eq!(pair.second, 4);
        let long = "cat ".repeat(200);
        let cut = &bert.pairs(&"refund ".repeat(100), &[long.as_str()])[0];
        assert_eq!(cut.ids.len(), 64, "the model's 64 positions");
        assert_eq!(cut.second, 64 / 4 + 2, "the query keeps a quarter");

        let dir = tempfile::tempdir().expect("dir");
        crate::testing::tiny_cross_encoder(dir.path(), "xlm-roberta", 1);
        let xlmr = crate::hf::load(dir.path()).expect("xlm-r");
        let pair = &xlmr.pairs("refund", &["猫"])[0];
        let (open, close) = xlmr.tokenizer.markers();
        // <s> refund </s></s> 猫 </s>
        assert_eq!(pair.ids.first(), Some(&open));
        assert_eq!(pair.ids[pair.second - 2..pair.second], [close, close]);
        assert_eq!(pair.ids.last(), Some(&close));
        assert_eq!(pair.ids.len(), pair.second + xlmr.tokenizer.encode("猫").len() + 1);
    }
}
