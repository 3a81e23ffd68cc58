//! Plain-language chunking descriptions, Chinese and English: each must become the expected,
//! valid configuration; descriptions that say too little must say what was understood.

use lore_core::model::UserDefaults;
use lore_ingest::describe::read;
use serde_json::{Value, json};

#[rustfmt::skip]
const CASES: &[(&str, &str, &str)] = &[
    // Chinese
    ("按照段落分块，每个分块最多包含3个段落", "paragraph", r#"{"max_paragraphs_per_chunk": 3}"#),
    ("按段落切分，每块不超过800字", "paragraph", r#"{"max_chunk_size": 800}"#),
    ("每个段落单独一块，不合并", "paragraph", r#"{"merge_short_paragraphs": false}"#),
    ("按段落分块，合并短段落，每块至少100字，最多1000字", "paragraph", r#"{"min_chunk_size": 100, "max_chunk_size": 1000, "merge_short_paragraphs": true}"#),
    ("每个分块最多包含两个段落", "paragraph", r#"{"max_paragraphs_per_chunk": 2}"#),
    ("每块五百字，重叠五十字", "fixed", r#"{"chunk_size": 500, "chunk_overlap": 50}"#),
    ("固定长度分块，每块1000个字符", "fixed", r#"{"chunk_size": 1000}"#),
    ("分块大小为300字，重叠10%", "fixed", r#"{"chunk_size": 300, "chunk_overlap": 30}"#),
    ("每块一千二百字", "fixed", r#"{"chunk_size": 1200}"#),
    ("定长切分，块大小256", "fixed", r#"{"chunk_size": 256}"#),
    ("滑动窗口，窗口大小400字，步长200字", "sliding_window", r#"{"window_size": 400, "step": 200}"#),
    ("使用滑动窗口分块，每块600字，重叠100字", "sliding_window", r#"{"window_size": 600, "step": 500}"#),
    ("窗口300，步长150", "sliding_window", r#"{"window_size": 300, "step": 150}"#),
    ("按标题切分文档", "custom", r#"{"split_on_headings": true}"#),
    ("按章节分块，每块最多2000字", "custom", r#"{"split_on_headings": true, "max_chunk_size": 2000}"#),
    ("按句子分块", "custom", r#"{"separators": ["。", "！", "？", ". ", "! ", "? "]}"#),
    ("按句号切分，每块不超过200字", "custom", r#"{"max_chunk_size": 200}"#),
    ("用“---”分隔", "custom", r#"{"separators": ["---"]}"#),
    ("以「###」为分隔符分块", "custom", "{\"separators\": [\"###\"]}"),
    ("按markdown标题分块", "custom", r#"{"split_on_headings": true}"#),
    ("每段最多五百个字符", "paragraph", r#"{"max_chunk_size": 500}"#),
    // English
    ("500-character chunks with 50 overlap", "fixed", r#"{"chunk_size": 500, "chunk_overlap": 50}"#),
    ("Split by paragraph, at most 3 paragraphs per chunk", "paragraph", r#"{"max_paragraphs_per_chunk": 3}"#),
    ("paragraphs, max 800 characters each", "paragraph", r#"{"max_chunk_size": 800}"#),
    ("One paragraph per chunk, don't merge short paragraphs", "paragraph", r#"{"merge_short_paragraphs": false}"#),
    ("Paragraph chunks of at least 100 characters, merge short paragraphs", "paragraph", r#"{"min_chunk_size": 100, "merge_short_paragraphs": true}"#),
    ("Fixed size chunks of 1000 characters", "fixed", r#"{"chunk_size": 1000}"#),
    ("chunk size 512, overlap 64", "fixed", r#"{"chunk_size": 512, "chunk_overlap": 64}"#),
    ("1000 characters per chunk with 20% overlap", "fixed", r#"{"chunk_size": 1000, "chunk_overlap": 200}"#),
    ("Chunks of up to 750 chars", "fixed", r#"{"chunk_size": 750}"#),
    ("sliding window of 400 characters, step 100", "sliding_window", r#"{"window_size": 400, "step": 100}"#),
    ("Use a sliding window: 600 characters with an overlap of 150", "sliding_window", r#"{"window_size": 600, "step": 450}"#),
    ("window 256 stride 128", "sliding_window", r#"{"window_size": 256, "step": 128}"#),
    ("Split at every heading", "custom", r#"{"split_on_headings": true}"#),
    ("Split on markdown sections, max 1500 characters", "custom", r#"{"split_on_headings": true, "max_chunk_size": 1500}"#),
    ("one sentence per chunk", "custom", r#"{"separators": ["。", "！", "？", ". ", "! ", "? "]}"#),
    ("split by sentences, chunks no more than 300 characters", "custom", r#"{"max_chunk_size": 300}"#),
    ("Split on '---'", "custom", r#"{"separators": ["---"]}"#),
    ("separated by \"==\", at most 900 characters", "custom", r#"{"separators": ["=="], "max_chunk_size": 900}"#),
    ("FIXED chunks, size = 2000", "fixed", r#"{"chunk_size": 2000}"#),
];

#[test]
fn forty_descriptions_half_chinese_become_valid_configs() {
    assert!(CASES.len() >= 40);
    let chinese = CASES.iter().filter(|(d, ..)| d.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))).count();
    assert!(chinese * 2 >= CASES.len(), "half the table is Chinese");
    let mut failures = Vec::new();
    for (description, strategy, expected) in CASES {
        let reading = read(description);
        let Some(config) = reading.config else {
            failures.push(format!("{description:?}: not understood ({:?})", reading.understood));
            continue;
        };
        if config.strategy_type != *strategy {
            failures.push(format!("{description:?}: strategy {} instead of {strategy}", config.strategy_type));
            continue;
        }
        let expected: Value = serde_json::from_str(expected).expect("expected json");
        for (k, v) in expected.as_object().expect("object") {
            if config.config.get(k) != Some(v) {
                failures.push(format!("{description:?}: {k} = {:?}, expected {v}", config.config.get(k)));
            }
        }
        if let Err(e) = config.to_strategy(&UserDefaults::default()) {
            failures.push(format!("{description:?}: invalid config {:?}: {e}", config.config));
        }
        assert_eq!(config.nl_description.as_deref(), Some(*description));
        assert!(!reading.understood.is_empty());
    }
    assert!(
        failures.is_empty(),
        "{} of {} descriptions misread:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn vague_or_unsupported_descriptions_say_what_was_understood() {
    for vague in ["make it good", "随便分一下", ""] {
        assert!(read(vague).config.is_none(), "{vague}");
    }
    let tokens = read("512 token chunks");
    assert!(tokens.config.is_none());
    assert!(tokens.understood.iter().any(|u| u.contains("tokens")), "{:?}", tokens.understood);
    let semantic = read("按语义分块，每块最多600字");
    let config = semantic.config.expect("semantic is understood");
    assert_eq!((config.strategy_type.as_str(), &config.config["max_chunk_size"]), ("semantic", &json!(600)));
    assert!(semantic.understood.iter().any(|u| u.contains("semantic")));
    assert_eq!(json!(read("每块500字").config.map(|c| c.strategy_type)), json!("fixed"));
}
