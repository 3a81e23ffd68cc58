//! Chunking strategies. Every chunk is a slice of the input text (trimmed), so offsets are exact
//! and, for strategies without overlap, no text is lost or duplicated.

use lore_core::chunking::Strategy;
use serde_json::{Value, json};

mod tables;
pub use tables::{Stretch, markdown_table, moved, stretches, tables_in};

#[derive(Debug, Clone, PartialEq)]
pub struct TextChunk {
    pub content: String,
    /// Offsets in characters (Unicode scalar values) into the text: `[start, end)`.
    pub char_start: usize,
    pub char_end: usize,
    /// For a child of a hierarchical split: the index of its parent in the same list.
    pub parent: Option<usize>,
}

impl TextChunk {
    pub fn metadata(&self, strategy: &Strategy) -> Value {
        let name = match strategy {
            Strategy::Fixed { .. } => "fixed",
            Strategy::Paragraph { .. } => "paragraph",
            Strategy::SlidingWindow { .. } => "sliding_window",
            Strategy::Custom { .. } => "custom",
            Strategy::Hierarchical { .. } => "hierarchical",
            Strategy::Semantic { .. } => "semantic",
            Strategy::Qa { .. } => "qa",
        };
        let mut m = json!({"char_start": self.char_start, "char_end": self.char_end, "strategy": name});
        if let Strategy::Hierarchical { .. } = strategy {
            m["level"] = json!(if self.parent.is_some() { "child" } else { "parent" });
        }
        m
    }
}

/// How chunk sizes are counted: in characters (a CJK character counts as one), or in tokens as
/// a counter says (the knowledge base's embedding model's tokenizer).
#[derive(Clone, Copy)]
pub enum Measure<'a> {
    Chars,
    Tokens(&'a (dyn Fn(&str) -> usize + Sync)),
}

/// The text with a char-index ↔ byte-offset table, so strategies can work in characters while
/// slicing bytes, and measure spans in characters or tokens.
struct Indexed<'a> {
    text: &'a str,
    /// Byte offset of each char, plus the text length at the end.
    offsets: Vec<usize>,
    /// With token sizes: tokens before each char (prefix sums), plus the total at the end.
    tokens: Option<Vec<usize>>,
}

impl<'a> Indexed<'a> {
    fn measured(text: &'a str, measure: Measure<'_>) -> Self {
        let mut offsets: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        offsets.push(text.len());
        let tokens = match measure {
            Measure::Chars => None,
            Measure::Tokens(count) => Some(token_prefix(text, &offsets, count)),
        };
        Indexed { text, offsets, tokens }
    }

    fn chars(&self) -> usize {
        self.offsets.len() - 1
    }

    /// The size of chars `[s, e)`.
    fn len(&self, s: usize, e: usize) -> usize {
        match &self.tokens {
            None => e - s,
            Some(p) => p[e] - p[s],
        }
    }

    /// The furthest end in `[start, limit]` whose span from `start` measures at most `amount`.
    fn reach(&self, start: usize, amount: usize, limit: usize) -> usize {
        match &self.tokens {
            None => (start + amount).min(limit),
            Some(p) => {
                let target = p[start] + amount;
                start + p[start..=limit].partition_point(|&v| v <= target) - 1
            }
        }
    }

    /// The earliest start in `[floor, end]` whose span to `end` measures at most `amount`.
    fn back(&self, end: usize, amount: usize, floor: usize) -> usize {
        match &self.tokens {
            None => end.saturating_sub(amount).max(floor),
            Some(p) => {
                let target = p[end].saturating_sub(amount);
                floor + p[floor..=end].partition_point(|&v| v < target)
            }
        }
    }

    fn char_at(&self, i: usize) -> char {
        self.text[self.offsets[i]..].chars().next().unwrap_or(' ')
    }

    /// The trimmed chunk for chars `[start, end)`, or `None` if it is only whitespace.
    fn chunk(&self, start: usize, end: usize) -> Option<TextChunk> {
        let mut s = start;
        let mut e = end;
        while s < e && self.char_at(s).is_whitespace() {
            s += 1;
        }
        while e > s && self.char_at(e - 1).is_whitespace() {
            e -= 1;
        }
        (s < e).then(|| TextChunk {
            content: self.text[self.offsets[s]..self.offsets[e]].to_string(),
            char_start: s,
            char_end: e,
            parent: None,
        })
    }

    /// Where to end a piece that starts at `start` and may be at most `max` chars long: at the
    /// last natural boundary (whitespace or punctuation) in the final fifth of the window, so
    /// words are not cut in half; otherwise exactly at `max`.
    fn cut(&self, start: usize, max: usize, limit: usize) -> usize {
        let hard = self.reach(start, max, limit).max(start + 1).min(limit);
        if hard >= limit {
            return limit;
        }
        let floor = self.reach(start, max - max / 5, limit);
        (floor.max(start + 1)..hard).rev().find(|&i| is_boundary(self.char_at(i - 1))).unwrap_or(hard)
    }
}

/// Tokens before each char: the text is cut into segments (runs without whitespace, split after
/// punctuation and where CJK and other scripts meet), each segment's tokens are counted, and
/// spread evenly over its chars. Whitespace counts nothing. Exact at segment edges, within a
/// token or two inside a long segment.
fn token_prefix(text: &str, offsets: &[usize], count: &dyn Fn(&str) -> usize) -> Vec<usize> {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    let mut weight = vec![0usize; n];
    let mut i = 0;
    while i < n {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let cjk = lore_core::tokens::is_cjk(chars[i]);
        let mut j = i + 1;
        while j < n
            && !chars[j].is_whitespace()
            && !is_boundary(chars[j - 1])
            && lore_core::tokens::is_cjk(chars[j]) == cjk
        {
            j += 1;
        }
        let tokens = count(&text[offsets[i]..offsets[j]]);
        let len = j - i;
        for k in 0..len {
            weight[i + k] = (k + 1) * tokens / len - k * tokens / len;
        }
        i = j;
    }
    let mut prefix = Vec::with_capacity(n + 1);
    let mut total = 0;
    prefix.push(0);
    for w in weight {
        total += w;
        prefix.push(total);
    }
    prefix
}

fn is_boundary(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '。' | '！'
                | '？'
                | '；'
                | '，'
                | '、'
                | '：'
                | '.'
                | '!'
                | '?'
                | ';'
                | ','
                | ':'
                | ')'
                | '）'
                | '」'
                | '”'
        )
}

fn ends_sentence(c: char) -> bool {
    matches!(c, '。' | '！' | '？' | '；' | '!' | '?' | ';' | '\n')
}

pub fn chunk(text: &str, strategy: &Strategy) -> Vec<TextChunk> {
    chunk_measured(text, strategy, Measure::Chars)
}

/// How large a table chunk may be under a strategy; `None` where tables are text like any
/// other (a hierarchy's parents, question-and-answer pairs).
pub fn table_limit(strategy: &Strategy) -> Option<usize> {
    match strategy {
        Strategy::Fixed { chunk_size, .. } => Some(*chunk_size),
        Strategy::SlidingWindow { window_size, .. } => Some(*window_size),
        Strategy::Paragraph { max_chunk_size, .. }
        | Strategy::Custom { max_chunk_size, .. }
        | Strategy::Semantic { max_chunk_size, .. } => Some(*max_chunk_size),
        Strategy::Hierarchical { .. } | Strategy::Qa { .. } => None,
    }
}

/// Chunks with sizes counted by `measure`, tables kept as tables ([`tables`]).
pub fn chunk_measured(text: &str, strategy: &Strategy, measure: Measure<'_>) -> Vec<TextChunk> {
    let Some(max) = table_limit(strategy) else { return chunk_text(text, strategy, measure) };
    let mut out = Vec::new();
    for stretch in stretches(text, max, measure) {
        match stretch.chunks(|t| Ok::<_, std::convert::Infallible>(chunk_text(t, strategy, measure))) {
            Ok(chunks) => out.extend(chunks),
            Err(never) => match never {},
        }
    }
    out
}

/// Chunks prose (no table handling) with sizes counted by `measure`.
fn chunk_text(text: &str, strategy: &Strategy, measure: Measure<'_>) -> Vec<TextChunk> {
    let ix = Indexed::measured(text, measure);
    match strategy {
        Strategy::Fixed { chunk_size, chunk_overlap } => fixed(&ix, *chunk_size, *chunk_overlap),
        Strategy::SlidingWindow { window_size, step } => sliding(&ix, *window_size, *step),
        Strategy::Paragraph { max_chunk_size, min_chunk_size, merge_short_paragraphs, max_paragraphs_per_chunk } => {
            let limits = (*min_chunk_size, *max_chunk_size, max_paragraphs_per_chunk.unwrap_or(usize::MAX));
            paragraph(&ix, limits, *merge_short_paragraphs)
        }
        Strategy::Custom { max_chunk_size, separators, regex, split_on_headings } => {
            custom(&ix, *max_chunk_size, separators, regex.as_deref(), *split_on_headings)
        }
        Strategy::Hierarchical { parent_size, child_size, child_overlap } => {
            hierarchical(&ix, *parent_size, *child_size, *child_overlap)
        }
        // Without sentence embeddings every drop is equal: sentences are packed by size alone.
        // Pairs come from a table's rows (the worker reads them); a text is previewed a
        // paragraph per chunk.
        Strategy::Qa { .. } => paragraph(&ix, (0, lore_core::chunking::MAX_CHUNK_SIZE, 1), false),
        Strategy::Semantic { breakpoint_percentile, min_chunk_size, max_chunk_size } => {
            let units = sentences_measured(text, *max_chunk_size, measure);
            let flat = vec![1.0; units.len().saturating_sub(1)];
            let bounds = (*min_chunk_size, *max_chunk_size);
            group_semantic(text, &units, &flat, *breakpoint_percentile, bounds, measure)
        }
    }
}

/// The sentences of `text` (Chinese and Western sentence ends, line breaks), each at most `max`
/// characters: the units semantic chunking embeds and groups.
pub fn sentences(text: &str, max: usize) -> Vec<TextChunk> {
    sentences_measured(text, max, Measure::Chars)
}

/// Sentences of at most `max` as `measure` counts.
pub fn sentences_measured(text: &str, max: usize, measure: Measure<'_>) -> Vec<TextChunk> {
    let ix = Indexed::measured(text, measure);
    let n = ix.chars();
    let mut spans = Vec::new();
    let mut start = 0;
    for i in 0..n {
        let c = ix.char_at(i);
        let western_end = matches!(c, '.' | '!' | '?') && (i + 1 == n || ix.char_at(i + 1).is_whitespace());
        if ends_sentence(c) || western_end {
            split_long(&ix, (start, i + 1), max.max(1), &mut spans);
            start = i + 1;
        }
    }
    if start < n {
        split_long(&ix, (start, n), max.max(1), &mut spans);
    }
    spans.into_iter().filter_map(|(s, e)| ix.chunk(s, e)).collect()
}

/// Groups consecutive `sentences` into chunks: `similarities[i]` is the cosine similarity of
/// sentence `i` and `i + 1`; a chunk ends where the drop `1 - similarity` reaches the
/// `percentile` of all drops (once the chunk has `min` characters), or where the next sentence
/// would take it past `max`. A short last chunk joins the one before when it fits.
pub fn group_semantic(
    text: &str, sentences: &[TextChunk], similarities: &[f32], percentile: f64, (min, max): (usize, usize),
    measure: Measure<'_>,
) -> Vec<TextChunk> {
    let ix = Indexed::measured(text, measure);
    if sentences.is_empty() {
        return Vec::new();
    }
    let mut drops: Vec<f32> = similarities.iter().map(|s| 1.0 - s).collect();
    drops.sort_by(f32::total_cmp);
    let threshold = if drops.is_empty() {
        f32::INFINITY
    } else {
        let rank = ((percentile / 100.0) * (drops.len() - 1) as f64).round() as usize;
        drops[rank.min(drops.len() - 1)]
    };
    // Flat similarities mean no evidence of a topic change: never cut on them.
    let informative = drops.first() != drops.last();
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let (mut first, mut last) = (0usize, 0usize);
    for i in 1..sentences.len() {
        let length = ix.len(sentences[first].char_start, sentences[i - 1].char_end);
        let with_next = ix.len(sentences[first].char_start, sentences[i].char_end);
        let drop = 1.0 - similarities.get(i - 1).copied().unwrap_or(1.0);
        if (informative && drop >= threshold && length >= min) || with_next > max {
            groups.push((first, last));
            first = i;
        }
        last = i;
    }
    groups.push((first, last));
    if groups.len() >= 2 {
        let (a, _) = groups[groups.len() - 2];
        let (b, z) = groups[groups.len() - 1];
        let tail = ix.len(sentences[b].char_start, sentences[z].char_end);
        if tail < min && ix.len(sentences[a].char_start, sentences[z].char_end) <= max {
            groups.pop();
            if let Some(g) = groups.last_mut() {
                g.1 = z;
            }
        }
    }
    groups.into_iter().filter_map(|(a, z)| ix.chunk(sentences[a].char_start, sentences[z].char_end)).collect()
}

fn fixed(ix: &Indexed<'_>, size: usize, overlap: usize) -> Vec<TextChunk> {
    fixed_range(ix, 0, ix.chars(), size, overlap)
}

/// Fixed-size pieces of the chars `[from, n)`.
fn fixed_range(ix: &Indexed<'_>, from: usize, n: usize, size: usize, overlap: usize) -> Vec<TextChunk> {
    let mut out = Vec::new();
    let mut pos = from;
    while pos < n {
        let end = ix.cut(pos, size.max(1), n);
        out.extend(ix.chunk(pos, end));
        if end >= n {
            break;
        }
        // Without overlap the next chunk starts where this one ended (in tokens, chars that
        // weigh nothing would otherwise be repeated).
        pos = if overlap == 0 { end } else { ix.back(end, overlap, pos + 1) };
    }
    out
}

fn sliding(ix: &Indexed<'_>, window: usize, step: usize) -> Vec<TextChunk> {
    let n = ix.chars();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < n {
        let end = ix.reach(pos, window, n).max(pos + 1);
        out.extend(ix.chunk(pos, end));
        if end >= n {
            break;
        }
        pos = ix.reach(pos, step.max(1), n).max(pos + 1);
    }
    out
}

/// Paragraph spans in chars. Paragraphs are separated by blank lines; text without any blank
/// line (common in Chinese documents) uses single line breaks instead.
fn paragraphs(ix: &Indexed<'_>) -> Vec<(usize, usize)> {
    let n = ix.chars();
    let has_blank_lines = ix.text.contains("\n\n") || ix.text.contains("\n\r\n");
    let mut spans = Vec::new();
    let mut start = None;
    let mut i = 0;
    while i < n {
        let c = ix.char_at(i);
        if c == '\n' {
            let mut j = i + 1;
            while j < n && ix.char_at(j) != '\n' && ix.char_at(j).is_whitespace() {
                j += 1;
            }
            let blank_follows = j < n && ix.char_at(j) == '\n';
            if (!has_blank_lines || blank_follows)
                && let Some(s) = start.take()
            {
                spans.push((s, i));
            }
        } else if start.is_none() && !c.is_whitespace() {
            start = Some(i);
        }
        i += 1;
    }
    if let Some(s) = start {
        spans.push((s, n));
    }
    spans
}

/// Splits one span longer than `max` at sentence ends, then at natural boundaries.
fn split_long(ix: &Indexed<'_>, (start, end): (usize, usize), max: usize, out: &mut Vec<(usize, usize)>) {
    let mut pos = start;
    while pos < end {
        if ix.len(pos, end) <= max {
            out.push((pos, end));
            return;
        }
        let window_end = ix.reach(pos, max, end);
        let min_cut = ix.reach(pos, max / 4, end);
        let cut = (pos + 1..=window_end)
            .rev()
            .find(|&i| ends_sentence(ix.char_at(i - 1)))
            .filter(|&i| i > min_cut)
            .unwrap_or_else(|| ix.cut(pos, max, end));
        out.push((pos, cut));
        pos = cut;
    }
}

/// Paragraphs packed into chunks of at most `max`. With `merge`, as many as fit, up to
/// `max_paragraphs` each; a chunk shorter than `min` takes the next paragraph whatever
/// `max_paragraphs` says, and a short last chunk joins the one before, wherever the result fits
/// in `max`. Without `merge`, each paragraph stands alone.
fn paragraph(ix: &Indexed<'_>, (min, max, max_paragraphs): (usize, usize, usize), merge: bool) -> Vec<TextChunk> {
    let max = max.max(1);
    let mut units = Vec::new();
    for span in paragraphs(ix) {
        split_long(ix, span, max, &mut units);
    }
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut current: Option<(usize, usize, usize)> = None; // start, end, paragraph count
    for (s, e) in units {
        current = match current {
            Some((cs, ce, count))
                if merge && ix.len(cs, e) <= max && (ix.len(cs, ce) < min || count < max_paragraphs) =>
            {
                Some((cs, e, count + 1))
            }
            Some((cs, ce, _)) => {
                spans.push((cs, ce));
                Some((s, e, 1))
            }
            None => Some((s, e, 1)),
        };
    }
    if let Some((cs, ce, _)) = current {
        match spans.last_mut() {
            Some(last) if merge && ix.len(cs, ce) < min && ix.len(last.0, ce) <= max => last.1 = ce,
            _ => spans.push((cs, ce)),
        }
    }
    spans.into_iter().flat_map(|(s, e)| ix.chunk(s, e)).collect()
}

/// Cut points (in chars), each marked hard (a heading: never merged across) or soft.
fn custom(
    ix: &Indexed<'_>, max: usize, separators: &[String], pattern: Option<&str>, split_on_headings: bool,
) -> Vec<TextChunk> {
    let max = max.max(1);
    let to_char = |byte: usize| ix.offsets.partition_point(|&o| o < byte);
    let mut cuts: Vec<(usize, bool)> = Vec::new();
    for sep in separators {
        for (byte, m) in ix.text.match_indices(sep.as_str()) {
            cuts.push((to_char(byte + m.len()), false));
        }
    }
    if let Some(re) = pattern.and_then(|p| regex::Regex::new(&format!("(?m){p}")).ok()) {
        for m in re.find_iter(ix.text) {
            cuts.push((to_char(m.start()), false));
        }
    }
    if split_on_headings {
        static HEADING: std::sync::LazyLock<regex::Regex> =
            std::sync::LazyLock::new(|| regex::Regex::new(r"(?m)^#{1,6}\s").expect("regex"));
        for m in HEADING.find_iter(ix.text) {
            cuts.push((to_char(m.start()), true));
        }
    }
    cuts.sort();
    cuts.dedup_by(|a, b| {
        if a.0 == b.0 {
            b.1 |= a.1;
            true
        } else {
            false
        }
    });
    let n = ix.chars();
    let mut pieces: Vec<(usize, usize, bool)> = Vec::new(); // start, end, starts at a heading
    let mut start = 0;
    let mut hard = false;
    for (cut, is_hard) in cuts.into_iter().filter(|(c, _)| *c > 0 && *c < n) {
        if cut > start {
            pieces.push((start, cut, hard));
        }
        start = cut;
        hard = is_hard;
    }
    if start < n {
        pieces.push((start, n, hard));
    }
    let mut units = Vec::new();
    for (s, e, hard) in pieces {
        let mut parts = Vec::new();
        split_long(ix, (s, e), max, &mut parts);
        for (i, (ps, pe)) in parts.into_iter().enumerate() {
            units.push((ps, pe, hard && i == 0));
        }
    }
    let mut out = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for (s, e, hard) in units {
        current = match current {
            Some((cs, _)) if !hard && ix.len(cs, e) <= max => Some((cs, e)),
            Some((cs, ce)) => {
                out.extend(ix.chunk(cs, ce));
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    if let Some((cs, ce)) = current {
        out.extend(ix.chunk(cs, ce));
    }
    out
}

/// Parents cut at headings and blank lines up to `parent_size`, each followed by its children.
fn hierarchical(ix: &Indexed<'_>, parent_size: usize, child_size: usize, overlap: usize) -> Vec<TextChunk> {
    let mut out = Vec::new();
    for parent in custom(ix, parent_size, &["\n\n".to_string()], None, true) {
        let index = out.len();
        let children = fixed_range(ix, parent.char_start, parent.char_end, child_size, overlap);
        out.push(parent);
        out.extend(children.into_iter().map(|c| TextChunk { parent: Some(index), ..c }));
    }
    out
}

#[cfg(test)]
mod tests;
