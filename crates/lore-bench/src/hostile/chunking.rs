//! Chunking configurations at the edges of the budgets.

use lore_ingest::samples::Rng;
use serde_json::{Value, json};

/// A value at the edge for a size parameter, relative to `size`.
pub(crate) fn edge(rng: &mut Rng, size: u64) -> Value {
    match rng.below(16) {
        0 => json!(0),
        1 => json!(1),
        2 => json!(size.saturating_sub(1)),
        3 => json!(size),
        4 => json!(size + 1),
        5 => json!(100_000),
        6 => json!(100_001),
        7 => json!(u64::MAX),
        8 => json!(-1),
        9 => json!(i64::MIN),
        10 => json!(1e308),
        11 => json!(0.5),
        12 => json!(size.to_string()),
        13 => Value::Null,
        14 => json!(size / 2),
        _ => json!(rng.below(200_000)),
    }
}

pub(crate) fn random_size(rng: &mut Rng) -> u64 {
    [1, 2, 3, 10, 100, 800, 4096, 50_000, 99_999, 100_000][rng.below(10)]
}

/// A valid chunking configuration at the edges of what validation allows (half of those
/// generated), or one at the edges of validation itself.
pub(crate) fn chunking_config(rng: &mut Rng) -> Value {
    if rng.below(2) == 0 { valid_edge_config(rng) } else { edge_config(rng) }
}

pub(crate) fn valid_edge_config(rng: &mut Rng) -> Value {
    let s = [1u64, 2, 5, 10, 100, 800, 5_000, 100_000][rng.below(8)];
    let pick = |rng: &mut Rng, options: &[u64]| options[rng.below(options.len())];
    let (strategy, config) = match rng.below(6) {
        0 => ("fixed", json!({"chunk_size": s, "chunk_overlap": pick(rng, &[0, s / 2, s - s.div_ceil(10), s - 1])})),
        1 => (
            "paragraph",
            json!({"max_chunk_size": s, "min_chunk_size": pick(rng, &[0, s]), "max_paragraphs_per_chunk": pick(rng, &[1, 1000])}),
        ),
        2 => ("sliding_window", json!({"window_size": s, "step": pick(rng, &[1, s.div_ceil(10), s / 2 + 1, s])})),
        3 => (
            "custom",
            [
                json!({"max_chunk_size": s, "separators": ["。", ".", "\n"]}),
                json!({"max_chunk_size": s, "regex": "[。.!?]"}),
                json!({"max_chunk_size": s, "split_on_headings": true}),
            ][rng.below(3)]
            .clone(),
        ),
        4 => {
            let parent = pick(rng, &[s, 100_000]);
            let child = pick(rng, &[1, s.div_ceil(2), s]).min(parent);
            (
                "hierarchical",
                json!({"parent_size": parent, "child_size": child, "child_overlap": pick(rng, &[0, child / 2, child - child.div_ceil(10)])}),
            )
        }
        _ => (
            "semantic",
            json!({"max_chunk_size": s, "min_chunk_size": pick(rng, &[0, s / 2, s]), "breakpoint_percentile": pick(rng, &[1, 50, 99])}),
        ),
    };
    let mut config = config;
    if rng.below(4) == 0 {
        config["size_unit"] = json!("tokens");
    }
    json!({"strategy_type": strategy, "config": config})
}

/// A configuration at the edges of validation: zero, one, size-1, size, the maximum, huge,
/// negative, fractional, strings, unknown strategies and keys.
pub(crate) fn edge_config(rng: &mut Rng) -> Value {
    const STRATEGIES: &[&str] =
        &["fixed", "paragraph", "sliding_window", "custom", "hierarchical", "semantic", "magic", "", "FIXED"];
    let strategy = STRATEGIES[rng.below(STRATEGIES.len())];
    let size = random_size(rng);
    let size_value = if rng.below(4) == 0 { edge(rng, size) } else { json!(size) };
    let mut config = serde_json::Map::new();
    match strategy {
        "fixed" => {
            config.insert("chunk_size".into(), size_value);
            config.insert("chunk_overlap".into(), edge(rng, size));
        }
        "paragraph" => {
            config.insert("max_chunk_size".into(), size_value);
            config.insert("min_chunk_size".into(), edge(rng, size));
            if rng.below(2) == 0 {
                config.insert("max_paragraphs_per_chunk".into(), edge(rng, 3));
            }
            if rng.below(3) == 0 {
                config.insert(
                    "merge_short_paragraphs".into(),
                    [json!(false), json!("yes"), json!(1)][rng.below(3)].clone(),
                );
            }
        }
        "sliding_window" => {
            config.insert("window_size".into(), size_value);
            config.insert("step".into(), edge(rng, size));
        }
        "custom" => {
            config.insert("max_chunk_size".into(), size_value);
            match rng.below(4) {
                0 => {
                    let seps = [json!(["。", "\n"]), json!([""]), json!(vec!["a"; 1000]), json!("。"), json!([1, 2])];
                    config.insert("separators".into(), seps[rng.below(seps.len())].clone());
                }
                1 => {
                    let regexes = [
                        "(a+)+$",
                        "(?:.*){1000}",
                        "[\\s\\S]*?",
                        "a{100000}",
                        "(",
                        ".",
                        "",
                        "\\b",
                        "(?s).*",
                        "(\\w{1,1000}){1,1000}",
                        "[\\p{Han}]",
                        "(x|x|x|x|x|x|x|x)*y",
                    ];
                    config.insert("regex".into(), json!(regexes[rng.below(regexes.len())]));
                }
                2 => {
                    config.insert("split_on_headings".into(), json!(true));
                }
                _ => {}
            }
        }
        "hierarchical" => {
            config.insert("parent_size".into(), size_value);
            config.insert("child_size".into(), edge(rng, size));
            config.insert("child_overlap".into(), edge(rng, size / 2));
        }
        "semantic" => {
            config.insert("max_chunk_size".into(), size_value);
            config.insert("min_chunk_size".into(), edge(rng, size));
            config.insert(
                "breakpoint_percentile".into(),
                [json!(0), json!(1), json!(50), json!(99), json!(100), json!(f64::MAX), json!("90")][rng.below(7)]
                    .clone(),
            );
        }
        _ => {
            config.insert("chunk_size".into(), size_value);
        }
    }
    match rng.below(8) {
        0 => {
            config.insert("size_unit".into(), json!("tokens"));
        }
        1 => {
            config.insert("size_unit".into(), json!("characters"));
        }
        2 => {
            config.insert("size_unit".into(), [json!("bytes"), json!(7), json!(null)][rng.below(3)].clone());
        }
        3 => {
            config.insert("unknown_knob".into(), json!(1));
        }
        _ => {}
    }
    match rng.below(20) {
        0 => json!({"strategy_type": strategy, "config": "not an object"}),
        1 => json!({"strategy": strategy, "config": config}),
        2 => json!([strategy]),
        _ => json!({"strategy_type": strategy, "config": config}),
    }
}
