//! Chunking configured in plain language: "按照段落分块，每个分块最多包含3个段落" or "500-character
//! chunks with 50 overlap" becomes a `chunking_config`. A deterministic reader of the common
//! Chinese and English phrasings: strategy words, sizes, overlaps, steps, paragraph counts,
//! separators. What it understood is reported either way.

use std::sync::LazyLock;

use lore_core::chunking::ChunkingConfig;
use regex::Regex;
use serde_json::{Map, Value, json};
use unicode_normalization::UnicodeNormalization;

/// The result of reading a description.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The configuration, when the description says enough to make one.
    pub config: Option<ChunkingConfig>,
    /// Each thing understood, in words, for the person who wrote the description.
    pub understood: Vec<String>,
}

/// Chinese numerals to digits: 五百 → 500, 三 → 3, 一千二百 → 1200, 两 → 2.
fn chinese_numbers(text: &str) -> String {
    static NUM: LazyLock<Regex> = LazyLock::new(|| Regex::new("[零〇一二两三四五六七八九十百千万]+").expect("regex"));
    NUM.replace_all(text, |c: &regex::Captures<'_>| {
        let s = &c[0];
        let digit = |ch: char| match ch {
            '零' | '〇' => Some(0),
            '一' => Some(1),
            '二' | '两' => Some(2),
            '三' => Some(3),
            '四' => Some(4),
            '五' => Some(5),
            '六' => Some(6),
            '七' => Some(7),
            '八' => Some(8),
            '九' => Some(9),
            _ => None,
        };
        // "一" alone inside words (一起, 一般, 统一) is not a number; only convert numeral runs
        // that have a unit after them or stand as a count.
        let (mut total, mut section, mut current) = (0u64, 0u64, 0u64);
        for ch in s.chars() {
            match ch {
                '十' => {
                    section += if current == 0 { 10 } else { current * 10 };
                    current = 0;
                }
                '百' => {
                    section += current.max(1) * 100;
                    current = 0;
                }
                '千' => {
                    section += current.max(1) * 1000;
                    current = 0;
                }
                '万' => {
                    total += (section + current).max(1) * 10_000;
                    section = 0;
                    current = 0;
                }
                other => current = current * 10 + digit(other).unwrap_or(0),
            }
        }
        (total + section + current).to_string()
    })
    .into_owned()
}

fn normalise(description: &str) -> String {
    let text: String = description.nfkc().collect::<String>().to_lowercase();
    chinese_numbers(&text)
}

fn number(re: &Regex, text: &str) -> Option<u64> {
    re.captures(text).and_then(|c| c.iter().skip(1).flatten().find_map(|m| m.as_str().parse().ok()))
}

macro_rules! re {
    ($name:ident, $pattern:expr) => {
        static $name: LazyLock<Regex> = LazyLock::new(|| Regex::new($pattern).expect("regex"));
    };
}

re!(
    SIZE,
    r"(?:(?:window|窗口)(?:\s*size|大小)?\s*(?:of|=|:|为|是)?\s*(\d+)|(\d+)\s*(?:个)?\s*(?:字符|字|汉字|chars?|characters?|letters?)(?:[\s-]*(?:long|长|的|大小))?(?:\s*(?:chunks?|块|分块|一块|每块|为一块))?|(?:chunk[\s_-]*size|size|块大小|分块大小|大小|长度|每块|每个分块|每段|每个块|每一块|一块)\s*(?:of|is|=|:|为|是|约|大约|最多|不超过|at most|up to)?\s*(\d+)|(?:最多|不超过|不多于|at most|up to|no more than|max(?:imum)?(?: of)?)\s*(\d+)\s*(?:个)?\s*(?:字符|字|chars?|characters?)|(\d+)[\s-]*(?:char|character)s?\b)"
);
re!(TOKENS, r"\d+\s*(?:个)?\s*(?:tokens?|词元)");
re!(
    OVERLAP,
    r"(?:overlap(?:ping)?|重叠|重合|交叠)\s*(?:of|by|=|:|为|是|约)?\s*(\d+)\s*(%|％|percent)?|(\d+)\s*(%|％|percent)?\s*(?:个)?\s*(?:字符|字|chars?|characters?)?\s*(?:of\s+)?(?:overlap|的重叠|重叠)"
);
re!(STEP, r"(?:step|stride|步长|步幅|每次移动|移动|slide by|advance by|advancing)\s*(?:size|of|=|:|为|是)?\s*(\d+)");
re!(STEP_AFTER, r"(\d+)\s*(?:个)?\s*(?:字符|字|chars?|characters?)?\s*(?:的)?(?:步长|step|stride)");
re!(
    PARAGRAPHS,
    r"(?:最多|不超过|至多|at most|up to|max(?:imum)?(?: of)?|no more than)?\s*(?:包含|包括|含)?\s*(\d+)\s*(?:个)?\s*(?:段落|段|paragraphs?)"
);
re!(
    MIN_SIZE,
    r"(?:至少|最少|不少于|不低于|at least|minimum(?: of)?|min(?:imum)? size(?: of)?)\s*(\d+)\s*(?:个)?\s*(?:字符|字|chars?|characters?)?"
);
re!(
    SEPARATOR,
    r#"(?:按|以|用|根据|split (?:on|by|at)|separated by|separator|分隔符(?:是|为)?|delimiter)\s*["'“‘「『]([^"'”’」』]+)["'”’」』]"#
);

fn has(text: &str, words: &[&str]) -> bool {
    words.iter().any(|w| text.contains(w))
}

pub fn read(description: &str) -> Reading {
    let text = normalise(description);
    let mut understood = Vec::new();
    let tokens = TOKENS.is_match(&text);
    if tokens {
        understood.push("sizes in tokens (only characters are supported)".to_string());
    }
    // Numbers that belong to the overlap, step or minimum are not the size.
    let mut rest = text.clone();
    for re in [&*MIN_SIZE, &*OVERLAP, &*STEP, &*STEP_AFTER] {
        rest = re.replace_all(&rest, " ").into_owned();
    }
    let size = number(&SIZE, &rest);
    let overlap = OVERLAP.captures(&text).and_then(|c| {
        let n: u64 = c.get(1).or(c.get(3))?.as_str().parse().ok()?;
        let percent = c.get(2).or(c.get(4)).is_some();
        Some((n, percent))
    });
    let step = number(&STEP, &text).or_else(|| number(&STEP_AFTER, &text));
    let paragraphs = number(&PARAGRAPHS, &text);
    let min_size = number(&MIN_SIZE, &text);
    let separator = SEPARATOR.captures(&text).and_then(|c| c.get(1)).map(|m| m.as_str().to_string());

    let says_window = has(&text, &["滑动窗口", "sliding window", "sliding-window", "窗口", "window"]) || step.is_some();
    let says_paragraph = has(&text, &["段落", "paragraph", "自然段", "每段", "一段"]) || paragraphs.is_some();
    let says_heading = has(&text, &["标题", "heading", "章节", "section", "markdown"]);
    let says_sentence = has(&text, &["句子", "句号", "sentence", "逐句", "按句"]);
    let says_fixed = has(&text, &["固定", "fixed", "定长", "等长", "equal"]);
    let says_no_merge = has(
        &text,
        &[
            "不合并",
            "不要合并",
            "don't merge",
            "do not merge",
            "no merging",
            "each paragraph",
            "每个段落一块",
            "每段一块",
            "一段一块",
            "single paragraph",
        ],
    );
    let says_semantic = has(&text, &["语义", "semantic", "meaning"]);

    let mut config = Map::new();
    let strategy = if says_semantic && !says_paragraph && !says_window {
        understood.push("chunks that end where the topic changes (semantic)".into());
        Some("semantic")
    } else if says_window {
        understood.push("sliding windows".into());
        Some("sliding_window")
    } else if says_heading || says_sentence || separator.is_some() {
        Some("custom")
    } else if says_paragraph {
        understood.push("paragraph boundaries".into());
        Some("paragraph")
    } else if says_fixed || size.is_some() {
        understood.push("fixed-size chunks".into());
        Some("fixed")
    } else {
        None
    };

    match strategy {
        Some("sliding_window") => {
            setting(&mut config, &mut understood, "window_size", size, "windows of {n} characters");
            let step = step.or_else(|| match (size, overlap) {
                (Some(s), Some((o, false))) if o < s => Some(s - o),
                (Some(s), Some((p, true))) if p < 100 => Some(s - s * p / 100),
                _ => None,
            });
            setting(&mut config, &mut understood, "step", step, "a step of {n} characters");
        }
        Some("paragraph") => {
            setting(&mut config, &mut understood, "max_chunk_size", size, "at most {n} characters per chunk");
            setting(&mut config, &mut understood, "min_chunk_size", min_size, "at least {n} characters per chunk");
            setting(
                &mut config,
                &mut understood,
                "max_paragraphs_per_chunk",
                paragraphs,
                "at most {n} paragraphs per chunk",
            );
            if says_no_merge {
                config.insert("merge_short_paragraphs".into(), json!(false));
                understood.push("one paragraph per chunk".into());
            } else if has(&text, &["合并", "merge", "combine"]) {
                config.insert("merge_short_paragraphs".into(), json!(true));
                understood.push("short paragraphs merged".into());
            }
        }
        Some("semantic") => {
            setting(&mut config, &mut understood, "max_chunk_size", size, "at most {n} characters per chunk");
            setting(&mut config, &mut understood, "min_chunk_size", min_size, "at least {n} characters per chunk");
        }
        Some("custom") => {
            let mut separators: Vec<Value> = Vec::new();
            if says_heading {
                config.insert("split_on_headings".into(), json!(true));
                understood.push("a new chunk at each heading".into());
            }
            if says_sentence {
                separators.extend(["。", "！", "？", ". ", "! ", "? "].map(|s| json!(s)));
                understood.push("sentence boundaries".into());
            }
            if let Some(sep) = &separator {
                let sep = match sep.as_str() {
                    "\\n" | "换行" | "newline" => "\n".to_string(),
                    other => other.to_string(),
                };
                understood.push(format!("the separator {sep:?}"));
                separators.push(json!(sep));
            }
            if !separators.is_empty() {
                config.insert("separators".into(), Value::Array(separators));
            }
            setting(&mut config, &mut understood, "max_chunk_size", size, "at most {n} characters per chunk");
        }
        Some(_) => {
            setting(&mut config, &mut understood, "chunk_size", size, "{n} characters per chunk");
            match overlap {
                Some((o, false)) => {
                    config.insert("chunk_overlap".into(), json!(o));
                    understood.push(format!("an overlap of {o} characters"));
                }
                Some((p, true)) => {
                    if let Some(s) = size {
                        config.insert("chunk_overlap".into(), json!(s * p / 100));
                        understood.push(format!("an overlap of {p}% ({} characters)", s * p / 100));
                    }
                }
                None => {}
            }
        }
        None => {}
    }
    let Some(strategy) = strategy.filter(|_| !tokens) else {
        return Reading { config: None, understood };
    };
    let config = ChunkingConfig {
        strategy_type: strategy.to_string(),
        config,
        nl_description: Some(description.to_string()),
        llm_provider: Some("rules".into()),
        generation_reasoning: Some(format!("understood: {}", understood.join("; "))),
    };
    Reading { config: Some(config), understood }
}

/// Sets `key` to `value` where the description gave one, and says so (`{n}` in `said` standing
/// for the value).
fn setting(config: &mut Map<String, Value>, understood: &mut Vec<String>, key: &str, value: Option<u64>, said: &str) {
    if let Some(n) = value {
        config.insert(key.into(), json!(n));
        understood.push(said.replace("{n}", &n.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_numerals() {
        assert_eq!(chinese_numbers("五百字"), "500字");
        assert_eq!(chinese_numbers("一千二百个字符"), "1200个字符");
        assert_eq!(chinese_numbers("三个段落"), "3个段落");
        assert_eq!(chinese_numbers("两段"), "2段");
        assert_eq!(chinese_numbers("十五"), "15");
    }
}
