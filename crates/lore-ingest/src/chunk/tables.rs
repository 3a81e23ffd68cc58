//! Tables in chunking: every reader writes a table as a Markdown table (`| a | b |`, a `| --- |`
//! line under the header), and chunking keeps it one: a table is a chunk of its own, or, when
//! it is larger than a chunk, chunks of whole rows, each under the table's header again. (Those
//! later pieces are the one place a chunk is not a plain slice of the text: the header they
//! repeat stands before their span.)

use super::{Measure, TextChunk};

/// A table as Markdown: the first row is the header; `|` in a cell is escaped, line breaks
/// become spaces, short rows are padded.
pub fn markdown_table(rows: &[Vec<String>]) -> String {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    if width == 0 {
        return String::new();
    }
    // Written straight into one string: a sheet can have a hundred thousand rows.
    let mut out = String::with_capacity(rows.iter().flatten().map(|c| c.len() + 3).sum::<usize>() + 8 * width);
    let line = |out: &mut String, row: &[String]| {
        out.push('|');
        for i in 0..width {
            out.push(' ');
            let cell = row.get(i).map(String::as_str).unwrap_or("").trim();
            // Most cells are one line without a `|`: copied as they are.
            if !cell.bytes().any(|b| matches!(b, b'\n' | b'\r' | b'\t' | b'|')) {
                out.push_str(cell);
                out.push_str(" |");
                continue;
            }
            for (n, word) in cell.split_whitespace().enumerate() {
                if n > 0 {
                    out.push(' ');
                }
                if word.contains('|') {
                    out.push_str(&word.replace('|', "\\|"));
                } else {
                    out.push_str(word);
                }
            }
            out.push_str(" |");
        }
    };
    line(&mut out, &rows[0]);
    out.push_str("\n|");
    out.push_str(&" --- |".repeat(width));
    for row in &rows[1..] {
        out.push('\n');
        line(&mut out, row);
    }
    out
}

/// The Markdown tables of `text`, as character spans `[start, end)`: a header line and a
/// separator line, both `|`-delimited, and the `|` lines after them.
pub fn tables_in(text: &str) -> Vec<(usize, usize)> {
    // Every document is chunked through here: one without a separator line is not read line by line.
    if !text.contains("---") {
        return Vec::new();
    }
    let mut lines = Vec::new(); // (start char, end char, line)
    let mut at = 0;
    for line in text.split('\n') {
        let n = line.chars().count();
        lines.push((at, at + n, line));
        at += n + 1;
    }
    let row = |l: &str| {
        let t = l.trim();
        t.len() >= 2 && t.starts_with('|') && t.ends_with('|')
    };
    let separator = |l: &str| {
        row(l) && {
            let cells: Vec<&str> = l.trim().trim_matches('|').split('|').map(str::trim).collect();
            cells.iter().all(|c| {
                let dashes = c.trim_matches(':');
                dashes.len() >= 3 && dashes.chars().all(|ch| ch == '-')
            })
        }
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < lines.len() {
        if row(lines[i].2) && separator(lines[i + 1].2) {
            let mut j = i + 2;
            while j < lines.len() && row(lines[j].2) {
                j += 1;
            }
            out.push((lines[i].0, lines[j - 1].1));
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// A stretch of a text: prose from character `start` on, to be chunked by a strategy, or a
/// table already cut into its chunks.
pub enum Stretch<'a> {
    Text { start: usize, text: &'a str },
    Table(Vec<TextChunk>),
}

/// `text` cut at its tables, each table into one chunk, or, past `max` as `measure` counts,
/// into chunks of whole rows under the header.
pub fn stretches<'a>(text: &'a str, max: usize, measure: Measure<'_>) -> Vec<Stretch<'a>> {
    let tables = tables_in(text);
    if tables.is_empty() {
        return vec![Stretch::Text { start: 0, text }];
    }
    let chars: Vec<char> = text.chars().collect();
    // Byte offsets of each character (and the end), to hand out slices of the text.
    let bytes: Vec<usize> = text.char_indices().map(|(b, _)| b).chain([text.len()]).collect();
    let mut out = Vec::new();
    let mut at = 0;
    for (start, end) in tables.into_iter().chain([(chars.len(), chars.len())]) {
        if start > at {
            let between = &text[bytes[at]..bytes[start]];
            if !between.trim().is_empty() {
                out.push(Stretch::Text { start: at, text: between });
            }
        }
        if end > start {
            out.push(Stretch::Table(table_chunks(&chars, start, end, max, measure)));
        }
        at = end;
    }
    out
}

impl Stretch<'_> {
    /// Prose chunked by `chunk_text` (its offsets moved onto the whole text), or the table's chunks.
    pub fn chunks<E>(self, chunk_text: impl FnOnce(&str) -> Result<Vec<TextChunk>, E>) -> Result<Vec<TextChunk>, E> {
        match self {
            Stretch::Table(chunks) => Ok(chunks),
            Stretch::Text { start, text } => Ok(moved(chunk_text(text)?, start)),
        }
    }
}

/// Chunks of a stretch starting at character `start`, their offsets moved onto the whole text.
pub fn moved(chunks: Vec<TextChunk>, start: usize) -> Vec<TextChunk> {
    chunks
        .into_iter()
        .map(|mut c| {
            c.char_start += start;
            c.char_end += start;
            c
        })
        .collect()
}

fn size(text: &str, measure: Measure<'_>) -> usize {
    match measure {
        Measure::Chars => text.chars().count(),
        Measure::Tokens(count) => count(text),
    }
}

fn table_chunks(chars: &[char], start: usize, end: usize, max: usize, measure: Measure<'_>) -> Vec<TextChunk> {
    let whole: String = chars[start..end].iter().collect();
    if size(&whole, measure) <= max {
        return vec![TextChunk { content: whole, char_start: start, char_end: end, parent: None }];
    }
    // Lines with their spans: header, separator, then rows.
    let mut lines = Vec::new();
    let mut at = start;
    for line in whole.split('\n') {
        let n = line.chars().count();
        lines.push((at, at + n, line));
        at += n + 1;
    }
    let header = format!("{}\n{}", lines[0].2, lines[1].2);
    let mut out: Vec<TextChunk> = Vec::new();
    let mut rows: Vec<&(usize, usize, &str)> = Vec::new();
    let flush = |rows: &mut Vec<&(usize, usize, &str)>, out: &mut Vec<TextChunk>| {
        if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
            let body = rows.iter().map(|r| r.2).collect::<Vec<_>>().join("\n");
            // The first piece is the table's beginning, header included; the others repeat it.
            let char_start = if out.is_empty() { start } else { first.0 };
            out.push(TextChunk { content: format!("{header}\n{body}"), char_start, char_end: last.1, parent: None });
        }
        rows.clear();
    };
    let header_size = size(&header, measure);
    let mut current = header_size;
    for line in &lines[2..] {
        let n = size(line.2, measure) + 1;
        if !rows.is_empty() && current + n > max {
            flush(&mut rows, &mut out);
            current = header_size;
        }
        rows.push(line);
        current += n;
    }
    flush(&mut rows, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(r: &[&[&str]]) -> Vec<Vec<String>> {
        r.iter().map(|row| row.iter().map(|c| c.to_string()).collect()).collect()
    }

    #[test]
    fn a_table_is_markdown_with_its_header() {
        let t = markdown_table(&rows(&[&["城市", "Revenue"], &["上海", "1200"], &["a|b", "multi\nline"], &["only"]]));
        assert_eq!(t, "| 城市 | Revenue |\n| --- | --- |\n| 上海 | 1200 |\n| a\\|b | multi line |\n| only |  |");
        assert_eq!(tables_in(&format!("Intro\n\n{t}\n\nAfter")), vec![(7, 7 + t.chars().count())]);
        assert!(tables_in("| not | a table |\nno separator").is_empty());
    }

    #[test]
    fn a_large_table_is_cut_between_rows_under_its_header() {
        let mut table = vec![vec!["产品".to_string(), "Price".to_string()]];
        table.extend((0..30).map(|i| vec![format!("商品{i}"), format!("{}", i * 10)]));
        let md = markdown_table(&table);
        let text = format!("前言一段。\n\n{md}\n\nClosing words.");
        let mut chunks = Vec::new();
        for stretch in stretches(&text, 100, Measure::Chars) {
            chunks.extend(
                stretch
                    .chunks(|s| {
                        let content = s.trim().to_string();
                        Ok::<_, ()>(vec![TextChunk {
                            content,
                            char_start: 0,
                            char_end: s.chars().count(),
                            parent: None,
                        }])
                    })
                    .expect("chunks"),
            );
        }
        assert_eq!(chunks.first().map(|c| c.content.as_str()), Some("前言一段。"));
        assert_eq!(chunks.last().map(|c| c.content.as_str()), Some("Closing words."));
        let pieces = &chunks[1..chunks.len() - 1];
        assert!(pieces.len() > 2, "{pieces:?}");
        let chars: Vec<char> = text.chars().collect();
        for piece in pieces {
            assert!(piece.content.starts_with("| 产品 | Price |\n| --- | --- |\n| 商品"), "{}", piece.content);
            assert!(piece.content.chars().count() <= 100 || piece.content.lines().count() == 3, "{}", piece.content);
            // The span ends where the piece's last row does.
            let span: String = chars[piece.char_start..piece.char_end].iter().collect();
            assert!(piece.content.ends_with(span.lines().last().expect("a row")), "{span}");
        }
        let rows: usize = pieces.iter().map(|p| p.content.lines().count() - 2).sum();
        assert_eq!(rows, 30, "every row once");
        assert_eq!(chunks[1].char_start, "前言一段。\n\n".chars().count());
    }
}
