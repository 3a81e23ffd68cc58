//! Chunking configuration (seed 001's `chunking_config`) and its inheritance:
//! document override > knowledge base settings > the user's defaults > system defaults.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Code, Error, Result};
use crate::model::UserDefaults;

/// The stored form, exactly as seed 001 describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChunkingConfig {
    pub strategy_type: String,
    #[serde(default)]
    pub config: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nl_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm_provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_reasoning: Option<String>,
}

/// A validated strategy with every parameter filled in. Sizes count characters (a CJK
/// character counts as one).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "strategy_type", rename_all = "snake_case")]
pub enum Strategy {
    Fixed {
        chunk_size: usize,
        chunk_overlap: usize,
    },
    Paragraph {
        max_chunk_size: usize,
        min_chunk_size: usize,
        merge_short_paragraphs: bool,
        max_paragraphs_per_chunk: Option<usize>,
    },
    SlidingWindow {
        window_size: usize,
        step: usize,
    },
    /// Pieces cut after any of `separators`, before each match of `regex`, and before Markdown
    /// headings when `split_on_headings`; packed into chunks of at most `max_chunk_size`, never
    /// across a heading.
    Custom {
        max_chunk_size: usize,
        separators: Vec<String>,
        regex: Option<String>,
        split_on_headings: bool,
    },
    /// Parents around sections (cut at headings and blank lines, up to `parent_size`), each
    /// split into small children (`child_size`, `child_overlap`). Children are what search
    /// matches; a hit brings its parent as context.
    Hierarchical {
        parent_size: usize,
        child_size: usize,
        child_overlap: usize,
    },
    /// Sentences grouped by meaning: a chunk ends where the embedding similarity of consecutive
    /// sentences drops into its lowest `100 - breakpoint_percentile` percent, within size bounds.
    Semantic {
        breakpoint_percentile: f64,
        min_chunk_size: usize,
        max_chunk_size: usize,
    },
    /// Question-and-answer pairs from a table (CSV, TSV, XLSX, XLS, ODS): a chunk per row, its
    /// question and answer together, found by the question (and by the answer too when
    /// `match_answer`). Columns are found by their header (`question`/`问题`, `answer`/`答案`
    /// ...) unless named.
    Qa {
        question_column: Option<String>,
        answer_column: Option<String>,
        match_answer: bool,
    },
}

pub const DEFAULT_CHUNK_SIZE: usize = 800;
pub const DEFAULT_CHUNK_OVERLAP: usize = 100;
pub const DEFAULT_MIN_CHUNK_SIZE: usize = 100;
/// The default chunking's largest chunk, in the embedding model's tokens: the window of most
/// sentence encoders (a model with a smaller window gets chunks of its window).
pub const DEFAULT_WINDOW_TOKENS: usize = 512;
/// Semantic chunking cuts at the largest 10% of similarity drops by default.
pub const DEFAULT_BREAKPOINT_PERCENTILE: f64 = 90.0;
/// Upper bound on any size parameter: larger chunks defeat retrieval and blow up memory.
pub const MAX_CHUNK_SIZE: usize = 100_000;

fn invalid(message: impl Into<String>) -> Error {
    Error::new(Code::InvalidChunkingConfig, message)
}

/// Reads the parameters of one strategy, rejecting unknown keys so a typo never goes unnoticed.
struct Params<'a> {
    strategy: &'a str,
    map: &'a Map<String, Value>,
    known: Vec<&'static str>,
}

impl<'a> Params<'a> {
    fn new(strategy: &'a str, map: &'a Map<String, Value>) -> Self {
        Params { strategy, map, known: vec!["size_unit"] }
    }

    fn lookup(&mut self, names: &[&'static str]) -> Option<&'a Value> {
        self.known.extend_from_slice(names);
        names.iter().find_map(|n| self.map.get(*n)).filter(|v| !v.is_null())
    }

    fn size(&mut self, names: &[&'static str], default: usize) -> Result<usize> {
        let Some(value) = self.lookup(names) else { return Ok(default) };
        let n = value
            .as_u64()
            .ok_or_else(|| invalid(format!("{}.{} must be a positive integer", self.strategy, names[0])))?;
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= MAX_CHUNK_SIZE)
            .ok_or_else(|| invalid(format!("{}.{} must be at most {MAX_CHUNK_SIZE}", self.strategy, names[0])))
    }

    fn positive(&mut self, names: &[&'static str], default: usize) -> Result<usize> {
        let n = self.size(names, default)?;
        if n == 0 {
            return Err(invalid(format!("{}.{} must be at least 1", self.strategy, names[0])));
        }
        Ok(n)
    }

    fn text(&mut self, names: &[&'static str]) -> Result<Option<String>> {
        match self.lookup(names) {
            None => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= 200 => {
                Ok(Some(s.trim().to_string()))
            }
            Some(_) => Err(invalid(format!("{}.{} must be a column header (text)", self.strategy, names[0]))),
        }
    }

    fn flag(&mut self, names: &[&'static str], default: bool) -> Result<bool> {
        match self.lookup(names) {
            None => Ok(default),
            Some(v) => {
                v.as_bool().ok_or_else(|| invalid(format!("{}.{} must be true or false", self.strategy, names[0])))
            }
        }
    }

    fn finish(self) -> Result<()> {
        if let Some(unit) = self.map.get("size_unit")
            && SizeUnit::parse(unit).is_none()
        {
            return Err(invalid(format!("size_unit {unit} is not supported; use \"characters\" or \"tokens\"")));
        }
        for key in self.map.keys() {
            if !self.known.contains(&key.as_str()) {
                return Err(invalid(format!(
                    "unknown parameter '{key}' for strategy '{}'; expected one of: {}",
                    self.strategy,
                    self.known.join(", ")
                )));
            }
        }
        Ok(())
    }
}

impl ChunkingConfig {
    /// Validates the configuration and fills in defaults (the user's, then the system's).
    pub fn to_strategy(&self, user: &UserDefaults) -> Result<Strategy> {
        let size_default = user
            .default_chunk_size
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (1..=MAX_CHUNK_SIZE).contains(n))
            .unwrap_or(DEFAULT_CHUNK_SIZE);
        let overlap_default = user
            .default_chunk_overlap
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(DEFAULT_CHUNK_OVERLAP)
            .min(size_default / 2);
        let mut p = Params::new(&self.strategy_type, &self.config);
        let strategy = match self.strategy_type.as_str() {
            "fixed" => {
                let chunk_size = p.positive(&["chunk_size", "size"], size_default)?;
                let chunk_overlap = p.size(&["chunk_overlap", "overlap"], overlap_default.min(chunk_size / 2))?;
                if chunk_overlap >= chunk_size {
                    return Err(invalid("fixed.chunk_overlap must be smaller than chunk_size"));
                }
                Strategy::Fixed { chunk_size, chunk_overlap }
            }
            "paragraph" => {
                let max_chunk_size = p.positive(&["max_chunk_size", "chunk_size"], size_default)?;
                let min_chunk_size = p.size(&["min_chunk_size"], DEFAULT_MIN_CHUNK_SIZE.min(max_chunk_size))?;
                if min_chunk_size > max_chunk_size {
                    return Err(invalid("paragraph.min_chunk_size must not exceed max_chunk_size"));
                }
                let merge_short_paragraphs = p.flag(&["merge_short_paragraphs"], true)?;
                let max_paragraphs_per_chunk = match p.lookup(&["max_paragraphs_per_chunk", "max_paragraphs"]) {
                    None => None,
                    Some(v) => Some(
                        v.as_u64()
                            .filter(|n| *n >= 1)
                            .and_then(|n| usize::try_from(n).ok())
                            .ok_or_else(|| invalid("paragraph.max_paragraphs_per_chunk must be a positive integer"))?,
                    ),
                };
                Strategy::Paragraph { max_chunk_size, min_chunk_size, merge_short_paragraphs, max_paragraphs_per_chunk }
            }
            "sliding_window" => {
                let window_size = p.positive(&["window_size", "window"], size_default)?;
                let step = p.positive(
                    &["step", "step_size"],
                    window_size.saturating_sub(overlap_default.min(window_size / 2)).max(1),
                )?;
                if step > window_size {
                    return Err(invalid("sliding_window.step must not exceed window_size (text would be skipped)"));
                }
                Strategy::SlidingWindow { window_size, step }
            }
            "custom" => {
                let max_chunk_size = p.positive(&["max_chunk_size", "chunk_size"], size_default)?;
                let separators = match p.lookup(&["separators"]) {
                    None => Vec::new(),
                    Some(Value::Array(items)) => items
                        .iter()
                        .map(|v| v.as_str().filter(|s| !s.is_empty()).map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| invalid("custom.separators must be a list of non-empty strings"))?,
                    Some(_) => return Err(invalid("custom.separators must be a list of strings")),
                };
                let regex = match p.lookup(&["regex", "pattern"]) {
                    None => None,
                    Some(Value::String(r)) => {
                        regex::Regex::new(&format!("(?m){r}"))
                            .map_err(|e| invalid(format!("custom.regex is not a valid regular expression: {e}")))?;
                        Some(r.clone())
                    }
                    Some(_) => return Err(invalid("custom.regex must be a string")),
                };
                let split_on_headings = p.flag(&["split_on_headings", "markdown_headings"], false)?;
                if separators.is_empty() && regex.is_none() && !split_on_headings {
                    return Err(invalid("custom chunking needs separators, a regex, or split_on_headings: true"));
                }
                Strategy::Custom { max_chunk_size, separators, regex, split_on_headings }
            }
            "hierarchical" => {
                let parent_size =
                    p.positive(&["parent_size", "parent_chunk_size"], (size_default * 4).min(MAX_CHUNK_SIZE))?;
                let child_size =
                    p.positive(&["child_size", "child_chunk_size", "chunk_size"], (size_default / 2).max(1))?;
                let child_overlap = p.size(&["child_overlap", "chunk_overlap", "overlap"], 0)?;
                if child_size > parent_size {
                    return Err(invalid("hierarchical.child_size must not exceed parent_size"));
                }
                if child_overlap >= child_size {
                    return Err(invalid("hierarchical.child_overlap must be smaller than child_size"));
                }
                Strategy::Hierarchical { parent_size, child_size, child_overlap }
            }
            "semantic" => {
                let max_chunk_size = p.positive(&["max_chunk_size", "chunk_size"], size_default)?;
                let min_chunk_size = p.size(&["min_chunk_size"], DEFAULT_MIN_CHUNK_SIZE.min(max_chunk_size))?;
                if min_chunk_size > max_chunk_size {
                    return Err(invalid("semantic.min_chunk_size must not exceed max_chunk_size"));
                }
                let breakpoint_percentile =
                    match p.lookup(&["breakpoint_percentile", "breakpoint_threshold", "percentile"]) {
                        None => DEFAULT_BREAKPOINT_PERCENTILE,
                        Some(v) => v
                            .as_f64()
                            .filter(|p| (1.0..=99.0).contains(p))
                            .ok_or_else(|| invalid("semantic.breakpoint_percentile must be a number from 1 to 99"))?,
                    };
                Strategy::Semantic { breakpoint_percentile, min_chunk_size, max_chunk_size }
            }
            "qa" => Strategy::Qa {
                question_column: p.text(&["question_column", "question"])?,
                answer_column: p.text(&["answer_column", "answer"])?,
                match_answer: p.flag(&["match_answer"], false)?,
            },
            other => {
                return Err(invalid(format!(
                    "unknown strategy_type '{other}'; expected fixed, paragraph, sliding_window, custom, hierarchical, semantic or qa"
                )));
            }
        };
        p.finish()?;
        strategy.check_repetition()?;
        Ok(strategy)
    }

    /// Parses a JSON value as a chunking configuration, with the error code clients expect.
    pub fn from_value(value: Value) -> Result<ChunkingConfig> {
        serde_json::from_value(value).map_err(|e| invalid(format!("invalid chunking_config: {e}")))
    }
}

impl Strategy {
    /// The size a chunk advances the text by, against the size it covers: a sliding window of
    /// 1,000 stepping by 100 repeats each character 10 times, which the budget bounds.
    fn advance(&self) -> Option<(usize, usize, &'static str)> {
        match self {
            Strategy::Fixed { chunk_size, chunk_overlap } => {
                Some((*chunk_size, chunk_size - chunk_overlap, "fixed.chunk_overlap"))
            }
            Strategy::SlidingWindow { window_size, step } => Some((*window_size, *step, "sliding_window.step")),
            Strategy::Hierarchical { child_size, child_overlap, .. } => {
                Some((*child_size, child_size - child_overlap, "hierarchical.child_overlap"))
            }
            _ => None,
        }
    }

    fn check_repetition(&self) -> Result<()> {
        let max = crate::budget::budgets().max_chunk_repetition.max(1);
        if let Some((size, advance, what)) = self.advance()
            && size.div_ceil(advance.max(1)) > max
        {
            return Err(crate::budget::exceeded(
                Code::ChunkOverlapTooLarge,
                format!(
                    "{what} makes every character repeat in {} chunks (size {size}, advancing {advance}); at most {max} are allowed",
                    size.div_ceil(advance.max(1))
                ),
                "max-chunk-repetition",
            ));
        }
        Ok(())
    }

    /// The fewest chunks `text_chars` characters can give: no chunk is larger than this.
    fn largest_chunk(&self) -> usize {
        match self {
            Strategy::Fixed { chunk_size, chunk_overlap } => chunk_size - chunk_overlap,
            Strategy::Paragraph { max_chunk_size, .. }
            | Strategy::Custom { max_chunk_size, .. }
            | Strategy::Semantic { max_chunk_size, .. } => *max_chunk_size,
            Strategy::SlidingWindow { step, .. } => *step,
            Strategy::Hierarchical { child_size, child_overlap, .. } => child_size - child_overlap,
            // A row is a chunk, however long.
            Strategy::Qa { .. } => MAX_CHUNK_SIZE,
        }
        .max(1)
    }

    /// Refuses, before any chunking, a text that must give more chunks than a document may have:
    /// at least (text / largest chunk), or exactly (text / step) for the strategies that step.
    pub fn check_text_budget(&self, text_chars: usize) -> Result<()> {
        self.check_size_budget(text_chars, text_chars)
    }

    /// The same for sizes in tokens, before the text is tokenized: each of its words (runs of
    /// non-space) is at least one token, so its word count bounds the chunks from below.
    pub fn check_token_budget(&self, text: &str) -> Result<()> {
        self.check_size_budget(text.split_whitespace().count(), text.chars().count())
    }

    /// The check for a text of at least `size` units (characters or tokens) and `text_chars`.
    fn check_size_budget(&self, size: usize, text_chars: usize) -> Result<()> {
        let fewest = size / self.largest_chunk();
        let stepped = self.advance().map(|(_, advance, _)| size / advance.max(1)).unwrap_or(0);
        check_chunk_count(fewest.max(stepped), text_chars)
    }
}

/// Chunks must bring this many new characters each on average: a window of 10 stepping by 1
/// turns 20 KB into 20,000 chunks to embed, within every other budget.
pub const MIN_CHARS_PER_CHUNK: usize = 20;

/// Refuses a chunk count above the per-document budget, or above one chunk per
/// [`MIN_CHARS_PER_CHUNK`] characters of the text (and 100 more, for short texts).
pub fn check_chunk_count(chunks: usize, text_chars: usize) -> Result<()> {
    let max = crate::budget::budgets().max_chunks_per_document.min(text_chars / MIN_CHARS_PER_CHUNK + 100);
    if chunks > max {
        return Err(crate::budget::exceeded(
            Code::TooManyChunks,
            format!(
                "this text would give at least {chunks} chunks; one document may have at most {max}; use larger chunks"
            ),
            "max-chunks-per-document",
        ));
    }
    Ok(())
}

/// What chunk sizes count: characters (a CJK character is one), or tokens of the knowledge
/// base's embedding model (its own tokenizer; an estimate for remote models).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SizeUnit {
    #[default]
    Characters,
    Tokens,
}

impl SizeUnit {
    fn parse(value: &Value) -> Option<SizeUnit> {
        match value.as_str()? {
            "characters" | "chars" | "character" | "char" => Some(SizeUnit::Characters),
            "tokens" | "token" => Some(SizeUnit::Tokens),
            _ => None,
        }
    }
}

impl ChunkingConfig {
    /// The unit of this configuration's sizes (`config.size_unit`).
    pub fn size_unit(&self) -> SizeUnit {
        self.config.get("size_unit").and_then(SizeUnit::parse).unwrap_or_default()
    }
}

/// The system default when nobody configured anything: paragraphs packed up to `window` tokens
/// of the knowledge base's embedding model, so that a document the model reads at once stays
/// whole, and a longer one is cut between paragraphs (between sentences inside a long one). A
/// user who set `default_chunk_size` keeps the character-sized paragraphs of that default.
pub fn system_default(window: usize, user: &UserDefaults) -> ChunkingConfig {
    let mut config = Map::new();
    if user.default_chunk_size.is_none() {
        let window = window.clamp(1, DEFAULT_WINDOW_TOKENS);
        config.insert("max_chunk_size".into(), window.into());
        config.insert("min_chunk_size".into(), DEFAULT_MIN_CHUNK_SIZE.min(window).into());
        config.insert("size_unit".into(), "tokens".into());
    }
    ChunkingConfig {
        strategy_type: "paragraph".into(),
        config,
        nl_description: None,
        llm_provider: None,
        generation_reasoning: None,
    }
}

/// The effective chunking for a document, and the unit of its sizes: its own configuration, else
/// its knowledge base's, else the [`system_default`] for a model that reads `window` tokens.
pub fn resolve(
    document: Option<&ChunkingConfig>, knowledge_base: Option<&ChunkingConfig>, user: &UserDefaults, window: usize,
) -> Result<(Strategy, SizeUnit)> {
    let default;
    let config = match document.or(knowledge_base) {
        Some(config) => config,
        None => {
            default = system_default(window, user);
            &default
        }
    };
    Ok((config.to_strategy(user)?, config.size_unit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(v: Value) -> ChunkingConfig {
        ChunkingConfig::from_value(v).expect("valid config")
    }

    #[test]
    fn seed_example_parses() {
        let c = cfg(json!({
            "strategy_type": "paragraph",
            "config": {"max_chunk_size": 800, "min_chunk_size": 100, "merge_short_paragraphs": true},
            "nl_description": "按照段落分块，每个分块最多包含3个段落",
            "llm_provider": "qwen",
            "generation_reasoning": "..."
        }));
        assert_eq!(
            c.to_strategy(&UserDefaults::default()).expect("strategy"),
            Strategy::Paragraph {
                max_chunk_size: 800,
                min_chunk_size: 100,
                merge_short_paragraphs: true,
                max_paragraphs_per_chunk: None
            }
        );
    }

    #[test]
    fn document_overrides_knowledge_base_which_overrides_user_defaults() {
        let user =
            UserDefaults { default_chunk_size: Some(300), default_chunk_overlap: Some(30), ..Default::default() };
        let kb = cfg(json!({"strategy_type": "fixed", "config": {}}));
        let doc = cfg(json!({"strategy_type": "sliding_window", "config": {"window_size": 50, "step": 25}}));
        let strategy = |d, k, user: &UserDefaults| resolve(d, k, user, 384).expect("resolved");
        assert_eq!(
            strategy(Some(&doc), Some(&kb), &user),
            (Strategy::SlidingWindow { window_size: 50, step: 25 }, SizeUnit::Characters)
        );
        assert_eq!(
            strategy(None, Some(&kb), &user),
            (Strategy::Fixed { chunk_size: 300, chunk_overlap: 30 }, SizeUnit::Characters)
        );
        assert!(matches!(
            strategy(None, None, &user),
            (Strategy::Paragraph { max_chunk_size: 300, .. }, SizeUnit::Characters)
        ));
        // Nobody chose: paragraphs up to the model's window, in its tokens, never past 512.
        let nobody = UserDefaults::default();
        let window = |w| resolve(None, None, &nobody, w).expect("default");
        assert!(matches!(
            window(384),
            (
                Strategy::Paragraph { max_chunk_size: 384, min_chunk_size: 100, merge_short_paragraphs: true, .. },
                SizeUnit::Tokens
            )
        ));
        assert!(matches!(window(8191), (Strategy::Paragraph { max_chunk_size: DEFAULT_WINDOW_TOKENS, .. }, _)));
        assert!(matches!(window(64), (Strategy::Paragraph { max_chunk_size: 64, min_chunk_size: 64, .. }, _)));
    }

    #[test]
    fn bad_configs_are_rejected_with_the_chunking_code() {
        for bad in [
            json!({"strategy_type": "fixed", "config": {"chunk_size": 100, "chunk_overlap": 100}}),
            json!({"strategy_type": "fixed", "config": {"chunk_size": 0}}),
            json!({"strategy_type": "fixed", "config": {"chunk_size": "big"}}),
            json!({"strategy_type": "fixed", "config": {"chunk_sise": 10}}),
            json!({"strategy_type": "sliding_window", "config": {"window_size": 10, "step": 11}}),
            json!({"strategy_type": "paragraph", "config": {"max_chunk_size": 10, "min_chunk_size": 11}}),
            json!({"strategy_type": "magic"}),
        ] {
            let err = ChunkingConfig::from_value(bad.clone())
                .and_then(|c| c.to_strategy(&UserDefaults::default()))
                .expect_err(&bad.to_string());
            assert_eq!(err.code, Code::InvalidChunkingConfig, "{bad}");
        }
        let err = ChunkingConfig::from_value(json!({"strategy": "fixed"})).expect_err("missing type");
        assert_eq!(err.code, Code::InvalidChunkingConfig);
    }

    #[test]
    fn configs_that_repeat_the_text_too_often_are_refused_up_front() {
        for bad in [
            json!({"strategy_type": "sliding_window", "config": {"window_size": 100000, "step": 1}}),
            json!({"strategy_type": "fixed", "config": {"chunk_size": 1000, "chunk_overlap": 999}}),
            json!({"strategy_type": "hierarchical", "config": {"parent_size": 4000, "child_size": 1000, "child_overlap": 950}}),
        ] {
            let err = cfg(bad.clone()).to_strategy(&UserDefaults::default()).expect_err(&bad.to_string());
            assert_eq!(err.code, Code::ChunkOverlapTooLarge, "{bad}");
            assert!(err.message.contains("--max-chunk-repetition"), "{}", err.message);
        }
        // Overlaps that repeat each character a few times stay fine.
        let ok = cfg(json!({"strategy_type": "sliding_window", "config": {"window_size": 1000, "step": 100}}));
        assert!(ok.to_strategy(&UserDefaults::default()).is_ok());
    }

    #[test]
    fn texts_that_must_give_too_many_chunks_are_refused_before_chunking() {
        let tiny = cfg(json!({"strategy_type": "paragraph", "config": {"max_chunk_size": 1, "min_chunk_size": 0}}))
            .to_strategy(&UserDefaults::default())
            .expect("valid");
        let max = crate::budget::budgets().max_chunks_per_document;
        assert_eq!(tiny.check_text_budget(max * 2).expect_err("too many").code, Code::TooManyChunks);
        // Short texts may be cut small; long ones must bring MIN_CHARS_PER_CHUNK new characters
        // per chunk on average.
        assert!(tiny.check_text_budget(100).is_ok());
        assert_eq!(tiny.check_text_budget(10_000).expect_err("too many").code, Code::TooManyChunks);
        let window = cfg(json!({"strategy_type": "sliding_window", "config": {"window_size": 10, "step": 1}}))
            .to_strategy(&UserDefaults::default())
            .expect("within the repetition budget");
        assert_eq!(window.check_text_budget(20_000).expect_err("amplified").code, Code::TooManyChunks);
        let default = system_default(1, &UserDefaults { default_chunk_size: Some(800), ..Default::default() })
            .to_strategy(&UserDefaults::default())
            .expect("default");
        assert!(default.check_text_budget(10_000_000).is_ok(), "ordinary chunking of a large text is fine");
        // In tokens, a text's words bound its tokens from below: a dense text is refused unread.
        let tokens =
            system_default(16, &UserDefaults::default()).to_strategy(&UserDefaults::default()).expect("default");
        let dense = "1 2 3 4 5 6 7 8 9 0 ".repeat(100_000);
        assert_eq!(tokens.check_token_budget(&dense).expect_err("too many").code, Code::TooManyChunks);
        assert!(tokens.check_token_budget(&"The quick brown fox jumps. ".repeat(100_000)).is_ok());
        // "中文" counts characters, not bytes.
        let chinese = "中文分块".repeat(10);
        assert!(tiny.check_text_budget(chinese.chars().count()).is_ok());
    }
}
