//! The chunkers on Chinese and English text: sizes, overlaps, boundaries and offsets.

use super::*;

#[test]
fn sentences_split_chinese_and_english() {
    let text = "猫喜欢鱼。狗喜欢骨头！Cats purr. Dogs bark? 3.14 is pi";
    let s: Vec<String> = sentences(text, 800).into_iter().map(|c| c.content).collect();
    assert_eq!(s, vec!["猫喜欢鱼。", "狗喜欢骨头！", "Cats purr.", "Dogs bark?", "3.14 is pi"]);
    assert!(sentences(&"长".repeat(50), 20).iter().all(|c| c.content.chars().count() <= 20));
}

#[test]
fn semantic_groups_cut_at_the_largest_drops_within_bounds() {
    let text = "猫喜欢鱼。猫会抓老鼠。猫很爱睡觉。股市今天上涨。银行利率下调。投资者很乐观。";
    let units = sentences(text, 800);
    assert_eq!(units.len(), 6);
    let sims = [0.9, 0.85, 0.2, 0.88, 0.9];
    let groups: Vec<String> =
        group_semantic(text, &units, &sims, 90.0, (0, 800), Measure::Chars).into_iter().map(|c| c.content).collect();
    assert_eq!(groups, vec!["猫喜欢鱼。猫会抓老鼠。猫很爱睡觉。", "股市今天上涨。银行利率下调。投资者很乐观。"]);
    // The size bound wins over similarity; a short tail joins the chunk before it.
    let small = group_semantic(text, &units, &sims, 90.0, (0, 12), Measure::Chars);
    assert!(small.iter().all(|c| c.content.chars().count() <= 12), "{small:?}");
    let merged = group_semantic(text, &units, &[0.9, 0.9, 0.9, 0.9, 0.1], 90.0, (10, 800), Measure::Chars);
    assert_eq!(merged.len(), 1, "a one-sentence tail below the minimum is merged: {merged:?}");
    // Without embeddings (all similarities equal) sentences are packed by size.
    let packed =
        chunk(text, &Strategy::Semantic { breakpoint_percentile: 90.0, min_chunk_size: 0, max_chunk_size: 25 });
    assert_eq!(packed.len(), 2);
    let english = "Cats purr. Cats nap. Bonds fell. Rates rose.";
    let units = sentences(english, 800);
    let groups = group_semantic(english, &units, &[0.9, 0.1, 0.9], 90.0, (0, 800), Measure::Chars);
    assert_eq!(
        groups.iter().map(|c| c.content.as_str()).collect::<Vec<_>>(),
        vec!["Cats purr. Cats nap.", "Bonds fell. Rates rose."]
    );
}

fn contents(chunks: &[TextChunk]) -> Vec<&str> {
    chunks.iter().map(|c| c.content.as_str()).collect()
}

fn squeeze(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// A small deterministic generator of mixed Chinese/English documents.
struct Gen(u64);
impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn text(&mut self) -> String {
        const PIECES: &[&str] = &[
            "知识库",
            "中文分词",
            "。",
            "，",
            "检索增强生成",
            "hello",
            " ",
            "world",
            ". ",
            "\n",
            "\n\n",
            "向量",
            "search engine",
            "！",
            "a",
            "longwordwithoutanyspaces",
            "\n \n",
            "😀",
            "\t",
        ];
        let len = (self.next() % 200) as usize;
        (0..len).map(|_| PIECES[(self.next() % PIECES.len() as u64) as usize]).collect()
    }
}

fn strategies() -> Vec<Strategy> {
    vec![
        Strategy::Fixed { chunk_size: 17, chunk_overlap: 0 },
        Strategy::Fixed { chunk_size: 40, chunk_overlap: 10 },
        Strategy::SlidingWindow { window_size: 30, step: 30 },
        Strategy::SlidingWindow { window_size: 30, step: 12 },
        Strategy::Paragraph {
            max_chunk_size: 50,
            min_chunk_size: 10,
            merge_short_paragraphs: true,
            max_paragraphs_per_chunk: None,
        },
        Strategy::Paragraph {
            max_chunk_size: 25,
            min_chunk_size: 5,
            merge_short_paragraphs: false,
            max_paragraphs_per_chunk: None,
        },
        Strategy::Paragraph {
            max_chunk_size: 400,
            min_chunk_size: 5,
            merge_short_paragraphs: true,
            max_paragraphs_per_chunk: Some(3),
        },
        Strategy::Custom {
            max_chunk_size: 30,
            separators: vec!["。".into(), ". ".into()],
            regex: None,
            split_on_headings: true,
        },
        Strategy::Custom {
            max_chunk_size: 45,
            separators: vec![],
            regex: Some("^向量".into()),
            split_on_headings: false,
        },
        Strategy::Hierarchical { parent_size: 60, child_size: 15, child_overlap: 3 },
        Strategy::Hierarchical { parent_size: 200, child_size: 200, child_overlap: 0 },
        Strategy::Semantic { breakpoint_percentile: 90.0, min_chunk_size: 20, max_chunk_size: 60 },
    ]
}

#[test]
fn properties_hold_on_generated_mixed_language_text() {
    check_properties(Measure::Chars, &|t: &str| t.chars().count(), 0);
}

/// Sizes in tokens: a counter standing in for a model's tokenizer (per word: a CJK character
/// a token, other text a token per four characters; whitespace nothing). A cut inside a
/// segment may leave a chunk a token or so over what the counter says of it alone.
#[test]
fn properties_hold_with_sizes_in_tokens() {
    let counter = |t: &str| t.split_whitespace().map(lore_core::tokens::estimate).sum::<usize>();
    check_properties(Measure::Tokens(&counter), &counter, 2);
    let text = "知识库 supports hybrid search over documents. 向量检索和全文检索结合，效果更好。".repeat(5);
    let strategy = Strategy::Fixed { chunk_size: 20, chunk_overlap: 0 };
    let by_tokens = chunk_measured(&text, &strategy, Measure::Tokens(&counter));
    let by_chars = chunk(&text, &strategy);
    assert!(by_tokens.len() < by_chars.len(), "English words are several characters a token");
    assert!(by_tokens.iter().all(|c| counter(&c.content) <= 22), "{by_tokens:?}");
}

fn check_properties(measure: Measure<'_>, size_of: &dyn Fn(&str) -> usize, slack: usize) {
    let mut g = Gen(0x9E3779B97F4A7C15);
    for _ in 0..400 {
        let text = g.text();
        for strategy in strategies() {
            let chunks = chunk_measured(&text, &strategy, measure);
            let total: usize = text.chars().count();
            let mut covered = vec![false; total];
            let mut last_start = 0;
            for (i, c) in chunks.iter().enumerate() {
                assert!(!c.content.trim().is_empty(), "empty chunk {i} for {strategy:?}");
                assert_eq!(c.content, c.content.trim());
                let slice: String = text.chars().skip(c.char_start).take(c.char_end - c.char_start).collect();
                assert_eq!(slice, c.content, "offsets disagree with content");
                if !matches!(strategy, Strategy::Hierarchical { .. }) {
                    assert!(c.char_start >= last_start, "chunks out of order");
                }
                last_start = c.char_start;
                let limit = match &strategy {
                    Strategy::Fixed { chunk_size, .. } => *chunk_size,
                    Strategy::SlidingWindow { window_size, .. } => *window_size,
                    Strategy::Paragraph { max_chunk_size, .. }
                    | Strategy::Custom { max_chunk_size, .. }
                    | Strategy::Semantic { max_chunk_size, .. } => *max_chunk_size,
                    Strategy::Qa { .. } => lore_core::chunking::MAX_CHUNK_SIZE,
                    Strategy::Hierarchical { parent_size, child_size, .. } => {
                        if c.parent.is_some() {
                            *child_size
                        } else {
                            *parent_size
                        }
                    }
                };
                if let Some(p) = c.parent {
                    let parent = &chunks[p];
                    assert!(
                        parent.parent.is_none() && parent.char_start <= c.char_start && c.char_end <= parent.char_end
                    );
                }
                assert!(size_of(&c.content) <= limit + slack, "chunk over the size limit: {:?}", c.content);
                covered[c.char_start..c.char_end].iter_mut().for_each(|x| *x = true);
            }
            for (i, ch) in text.chars().enumerate() {
                assert!(covered[i] || ch.is_whitespace(), "char {i} {ch:?} lost by {strategy:?} in {text:?}");
            }
            if matches!(strategy, Strategy::Hierarchical { .. }) {
                // Parents alone partition the text; children alone cover it.
                let parents: String =
                    chunks.iter().filter(|c| c.parent.is_none()).map(|c| c.content.as_str()).collect();
                assert_eq!(squeeze(&parents), squeeze(&text), "parents lose or repeat text");
                let mut child_cover = vec![false; total];
                for c in chunks.iter().filter(|c| c.parent.is_some()) {
                    child_cover[c.char_start..c.char_end].iter_mut().for_each(|x| *x = true);
                }
                for (i, ch) in text.chars().enumerate() {
                    assert!(child_cover[i] || ch.is_whitespace(), "child coverage lost {ch:?}");
                }
                continue;
            }
            let overlapping = matches!(strategy, Strategy::Fixed { chunk_overlap: 1.., .. })
                || matches!(strategy, Strategy::SlidingWindow { window_size, step } if step < window_size);
            if !overlapping {
                let joined: String = chunks.iter().map(|c| c.content.as_str()).collect();
                assert_eq!(squeeze(&joined), squeeze(&text), "text duplicated or lost by {strategy:?}");
            }
        }
    }
}

#[test]
fn paragraphs_merge_up_to_the_limits() {
    let text = "第一段。\n\n第二段。\n\n第三段很长很长很长。\n\nFourth paragraph.";
    let s = Strategy::Paragraph {
        max_chunk_size: 20,
        min_chunk_size: 1,
        merge_short_paragraphs: true,
        max_paragraphs_per_chunk: Some(2),
    };
    assert_eq!(contents(&chunk(text, &s)), vec!["第一段。\n\n第二段。", "第三段很长很长很长。", "Fourth paragraph."]);
    let s = Strategy::Paragraph {
        max_chunk_size: 800,
        min_chunk_size: 1,
        merge_short_paragraphs: false,
        max_paragraphs_per_chunk: None,
    };
    assert_eq!(chunk(text, &s).len(), 4);
}

#[test]
fn paragraphs_shorter_than_the_minimum_are_merged_past_the_paragraph_limit() {
    // A heading line and a one-word paragraph would each be a chunk of their own.
    let text =
        "# 退款\n\n注意：\n\n购买后三十天内可以申请全额退款。\n\nRefunds reach you in five business days.\n\nThanks.";
    let s = |min, merge, max_paragraphs| Strategy::Paragraph {
        max_chunk_size: 60,
        min_chunk_size: min,
        merge_short_paragraphs: merge,
        max_paragraphs_per_chunk: max_paragraphs,
    };
    // One paragraph per chunk, and no minimum: every paragraph alone.
    assert_eq!(chunk(text, &s(1, true, Some(1))).len(), 5);
    // A minimum of 10 characters: short paragraphs take the next past the paragraph limit,
    // and the short tail joins the one before.
    assert_eq!(
        contents(&chunk(text, &s(10, true, Some(1)))),
        vec![
            "# 退款\n\n注意：\n\n购买后三十天内可以申请全额退款。",
            "Refunds reach you in five business days.\n\nThanks."
        ]
    );
    // Merging off: each paragraph alone, whatever the minimum.
    assert_eq!(chunk(text, &s(10, false, None)).len(), 5);
    // The maximum never gives way.
    let tight = Strategy::Paragraph {
        max_chunk_size: 20,
        min_chunk_size: 15,
        merge_short_paragraphs: true,
        max_paragraphs_per_chunk: Some(1),
    };
    assert!(chunk(text, &tight).iter().all(|c| c.content.chars().count() <= 20));
}

#[test]
fn chinese_without_blank_lines_splits_on_lines_and_sentences() {
    let text = "知识库是文档的集合。每个文档被切成分块。\n分块用于检索。";
    let s = Strategy::Paragraph {
        max_chunk_size: 12,
        min_chunk_size: 1,
        merge_short_paragraphs: true,
        max_paragraphs_per_chunk: None,
    };
    assert_eq!(contents(&chunk(text, &s)), vec!["知识库是文档的集合。", "每个文档被切成分块。", "分块用于检索。"]);
}

#[test]
fn fixed_counts_cjk_characters_as_one_and_avoids_cutting_words() {
    let zh = "一二三四五六七八九十";
    let s = Strategy::Fixed { chunk_size: 4, chunk_overlap: 1 };
    assert_eq!(contents(&chunk(zh, &s)), vec!["一二三四", "四五六七", "七八九十"]);
    let en = "alpha beta gamma delta epsilon";
    let s = Strategy::Fixed { chunk_size: 12, chunk_overlap: 0 };
    assert_eq!(contents(&chunk(en, &s)), vec!["alpha beta", "gamma delta", "epsilon"]);
}

#[test]
fn custom_splits_at_separators_regexes_and_headings() {
    let text = "# 第一章\n知识库。分块。\n# 第二章\n检索---重排---生成";
    let s =
        Strategy::Custom { max_chunk_size: 100, separators: vec!["---".into()], regex: None, split_on_headings: true };
    assert_eq!(contents(&chunk(text, &s)), vec!["# 第一章\n知识库。分块。", "# 第二章\n检索---重排---生成"]);
    let s = Strategy::Custom {
        max_chunk_size: 6,
        separators: vec!["---".into(), "。".into()],
        regex: None,
        split_on_headings: true,
    };
    assert_eq!(
        contents(&chunk(text, &s)),
        vec!["# 第一章", "知识库。", "分块。", "# 第二章", "检索---", "重排---", "生成"]
    );
    let s = Strategy::Custom {
        max_chunk_size: 100,
        separators: vec![],
        regex: Some(r"^第\S+条".into()),
        split_on_headings: false,
    };
    assert_eq!(
        contents(&chunk("总则\n第一条 适用范围\n第二条 定义", &s)),
        vec!["总则\n第一条 适用范围\n第二条 定义"],
        "pieces are packed up to the size"
    );
    let s = Strategy::Custom {
        max_chunk_size: 8,
        separators: vec![],
        regex: Some(r"^第\S+条".into()),
        split_on_headings: false,
    };
    assert_eq!(
        contents(&chunk("总则\n第一条 适用范围\n第二条 定义", &s)),
        vec!["总则", "第一条 适用范围", "第二条 定义"]
    );
}

#[test]
fn sliding_window_steps() {
    let s = Strategy::SlidingWindow { window_size: 4, step: 2 };
    assert_eq!(contents(&chunk("abcdefgh", &s)), vec!["abcd", "cdef", "efgh"]);
}
