//! Test tooling (the `testing` feature): models small enough to write in a test, in the formats
//! real ones come in, so that loading, pair encoding and heads are checked without a download.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

/// Deterministic weights in -0.5..0.5.
fn weights(seed: &mut u64, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((*seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect()
}

pub fn write_safetensors(path: &Path, tensors: &BTreeMap<String, (Vec<usize>, Vec<f32>)>) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, (shape, values)) in tensors {
        let start = data.len();
        data.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        header.insert(name.clone(), json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}));
    }
    let header = serde_json::to_vec(&Value::Object(header)).expect("header");
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header);
    bytes.extend(data);
    std::fs::write(path, bytes).expect("write");
}

/// A tiny cross-encoder in Hugging Face format, as a full checkpoint names it: BERT (`bert.`
/// prefixes, a WordPiece vocabulary, two token types, a pooler and a classifier) or XLM-R
/// (`roberta.` prefixes, a Unigram vocabulary, one token type, `classifier.dense` and
/// `classifier.out_proj`), of English words and Chinese characters, with `labels` outputs.
pub fn tiny_cross_encoder(dir: &Path, model_type: &str, labels: usize) {
    tiny_model(dir, model_type, 8, Some(labels));
}

/// A tiny embedding model in Hugging Face format (as [`tiny_cross_encoder`], without a head, CLS
/// pooled as bge models are) of `hidden` dimensions: 1,024 gives bge-m3's vectors.
pub fn tiny_embedding_model(dir: &Path, model_type: &str, hidden: usize) {
    tiny_model(dir, model_type, hidden, None);
    std::fs::create_dir_all(dir.join("1_Pooling")).expect("dir");
    std::fs::write(dir.join("1_Pooling/config.json"), json!({"pooling_mode_cls_token": true}).to_string())
        .expect("pooling");
}

fn tiny_model(dir: &Path, model_type: &str, hidden: usize, labels: Option<usize>) {
    let (inter, positions) = (16usize, 64usize);
    let bert = model_type == "bert";
    let words = ["refund", "policy", "days", "thirty", "cat", "the", "退", "款", "政", "策", "猫", "天"];
    let (tokens, tokenizer) = if bert {
        let all: Vec<String> =
            ["[PAD]", "[UNK]", "[CLS]", "[SEP]"].iter().chain(&words).map(|w| w.to_string()).collect();
        let vocab: serde_json::Map<String, Value> =
            all.iter().enumerate().map(|(i, w)| (w.clone(), json!(i))).collect();
        let tokenizer = json!({
            "model": {"type": "WordPiece", "vocab": vocab, "unk_token": "[UNK]", "continuing_subword_prefix": "##"},
            "normalizer": {"type": "BertNormalizer", "lowercase": true},
            "added_tokens": [],
        });
        (all.len(), tokenizer)
    } else {
        let mut vocab = vec![json!(["<s>", 0.0]), json!(["<pad>", 0.0]), json!(["</s>", 0.0]), json!(["<unk>", 0.0])];
        vocab.extend(words.iter().map(|w| json!([format!("\u{2581}{w}"), -1.0])));
        vocab.extend(words.iter().map(|w| json!([w, -2.0])));
        vocab.push(json!(["\u{2581}", -3.0]));
        let n = vocab.len();
        (n, json!({"model": {"type": "Unigram", "unk_id": 3, "vocab": vocab}, "added_tokens": []}))
    };
    let id2label: serde_json::Map<String, Value> =
        (0..labels.unwrap_or(1)).map(|i| (i.to_string(), json!(format!("LABEL_{i}")))).collect();
    let config = json!({
        "model_type": model_type, "hidden_size": hidden, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": inter, "max_position_embeddings": positions, "type_vocab_size": if bert { 2 } else { 1 },
        "layer_norm_eps": 1e-5, "pad_token_id": 1, "id2label": id2label,
    });
    let prefix = if bert { "bert" } else { "roberta" };
    let mut seed = 7u64;
    let mut t = BTreeMap::new();
    let mut put = |name: &str, shape: Vec<usize>| {
        let n = shape.iter().product();
        t.insert(name.to_string(), (shape, weights(&mut seed, n)));
    };
    put(&format!("{prefix}.embeddings.word_embeddings.weight"), vec![tokens, hidden]);
    put(&format!("{prefix}.embeddings.position_embeddings.weight"), vec![positions, hidden]);
    put(&format!("{prefix}.embeddings.token_type_embeddings.weight"), vec![if bert { 2 } else { 1 }, hidden]);
    for (name, shape) in [
        ("attention.self.query", (hidden, hidden)),
        ("attention.self.key", (hidden, hidden)),
        ("attention.self.value", (hidden, hidden)),
        ("attention.output.dense", (hidden, hidden)),
        ("intermediate.dense", (inter, hidden)),
        ("output.dense", (hidden, inter)),
    ] {
        put(&format!("{prefix}.encoder.layer.0.{name}.weight"), vec![shape.0, shape.1]);
        put(&format!("{prefix}.encoder.layer.0.{name}.bias"), vec![shape.0]);
    }
    if let Some(labels) = labels {
        let (dense, out) =
            if bert { ("bert.pooler.dense", "classifier") } else { ("classifier.dense", "classifier.out_proj") };
        put(&format!("{dense}.weight"), vec![hidden, hidden]);
        put(&format!("{dense}.bias"), vec![hidden]);
        put(&format!("{out}.weight"), vec![labels, hidden]);
        put(&format!("{out}.bias"), vec![labels]);
    }
    for norm in
        ["embeddings.LayerNorm", "encoder.layer.0.attention.output.LayerNorm", "encoder.layer.0.output.LayerNorm"]
    {
        let norm = format!("{prefix}.{norm}");
        t.insert(format!("{norm}.weight"), (vec![hidden], vec![1.0; hidden]));
        t.insert(format!("{norm}.bias"), (vec![hidden], vec![0.0; hidden]));
    }
    std::fs::create_dir_all(dir).expect("dir");
    std::fs::write(dir.join("config.json"), config.to_string()).expect("config");
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).expect("tokenizer");
    write_safetensors(&dir.join("model.safetensors"), &t);
}
