//! PDF text in reading order. Glyphs are collected with their positions, grouped into lines,
//! and each page is checked for a gutter: a vertical band that body lines do not cross. A page
//! with a gutter is read left column first, then right; lines that span both (titles) keep
//! their place above or below the columns.
//!
//! Tables are found first, from the geometry of the text alone: three or more consecutive rows
//! of short cells whose columns line up (vertical channels of white space that no cell of the
//! run crosses). They come out as Markdown tables where they stood.

use pdf_extract::{MediaBox, OutputDev, OutputError, Transform};

#[derive(Debug, Clone)]
struct Glyph {
    x: f64,
    end: f64,
    y: f64,
    size: f64,
    text: String,
    /// For words given by the caller ([`tables_in_words`]): which one this is.
    index: usize,
}

#[derive(Debug, Clone)]
struct Line {
    y: f64,
    start: f64,
    end: f64,
    size: f64,
    text: String,
}

/// Collects positioned glyphs page by page.
#[derive(Default)]
pub struct Collector {
    /// Each page's media box (llx, lly, urx, ury) and glyphs.
    pages: Vec<([f64; 4], Vec<Glyph>)>,
}

impl OutputDev for Collector {
    fn begin_page(&mut self, _: u32, media_box: &MediaBox, _: Option<(f64, f64, f64, f64)>) -> Result<(), OutputError> {
        self.pages.push(([media_box.llx, media_box.lly, media_box.urx, media_box.ury], Vec::new()));
        Ok(())
    }
    fn end_page(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
    fn output_character(
        &mut self, trm: &Transform, width: f64, _: f64, font_size: f64, text: &str,
    ) -> Result<(), OutputError> {
        let v = trm.transform_vector(euclid::vec2(font_size, font_size));
        let size = (v.x * v.y).abs().sqrt().max(0.1);
        if let Some((_, glyphs)) = self.pages.last_mut() {
            glyphs.push(Glyph {
                x: trm.m31,
                end: trm.m31 + width * size,
                y: trm.m32,
                size,
                text: text.to_string(),
                index: usize::MAX,
            });
        }
        Ok(())
    }
    fn begin_word(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
    fn end_word(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
    fn end_line(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
}

/// Glyphs grouped into rows (top to bottom), each row left to right.
fn rows_of(mut glyphs: Vec<Glyph>) -> Vec<Vec<Glyph>> {
    glyphs.sort_by(|a, b| b.y.total_cmp(&a.y).then(a.x.total_cmp(&b.x)));
    let mut rows: Vec<Vec<Glyph>> = Vec::new();
    for g in glyphs {
        match rows.last_mut() {
            Some(row) if (row[0].y - g.y).abs() < 0.5 * row[0].size.max(g.size) => row.push(g),
            _ => rows.push(vec![g]),
        }
    }
    for row in &mut rows {
        row.sort_by(|a, b| a.x.total_cmp(&b.x));
    }
    rows
}

/// A row cut where the white space between glyphs is wider than `gap` font sizes.
fn segments(row: &[Glyph], gap: f64) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut current: Vec<&Glyph> = Vec::new();
    let flush = |current: &mut Vec<&Glyph>, lines: &mut Vec<Line>| {
        if current.is_empty() {
            return;
        }
        let mut text = String::new();
        let mut last_end: Option<f64> = None;
        for g in current.iter() {
            // A space where the gap is one, but never between two CJK characters (Chinese
            // writes none; a recogniser's words may stand apart).
            let cjk_pair = text.chars().last().is_some_and(crate::ocr::is_cjk)
                && g.text.chars().next().is_some_and(crate::ocr::is_cjk);
            if let Some(end) = last_end
                && g.x - end > 0.2 * g.size
                && !text.ends_with(' ')
                && !g.text.starts_with(' ')
                && !cjk_pair
            {
                text.push(' ');
            }
            text.push_str(&g.text);
            last_end = Some(g.end);
        }
        let size = current.iter().map(|g| g.size).fold(0.0, f64::max);
        lines.push(Line { y: current[0].y, start: current[0].x, end: last_end.unwrap_or(current[0].x), size, text });
        current.clear();
    };
    for g in row {
        if let Some(prev) = current.last()
            && g.x - prev.end > gap * g.size.max(prev.size)
        {
            flush(&mut current, &mut lines);
        }
        current.push(g);
    }
    flush(&mut current, &mut lines);
    lines
}

/// Rows to lines; a wide gap splits a row (two columns side by side).
fn lines_of(rows: &[&Vec<Glyph>]) -> Vec<Line> {
    rows.iter().flat_map(|row| segments(row, 2.5)).collect()
}

/// A table found on a page: where its first row stands, its cells, and the rows it took.
struct Table {
    y: f64,
    rows: Vec<Vec<String>>,
    taken: std::ops::Range<usize>,
}

/// Cells of a table row are cut at gaps wider than this many font sizes.
const CELL_GAP: f64 = 1.0;
/// Cells longer than this on average are prose, not a table; with two cells a row, longer
/// than the second (a two-column page has two "cells" of prose a row).
const MAX_MEAN_CELL_CHARS: usize = 32;
const MAX_MEAN_PAIR_CHARS: usize = 16;

/// The tables among a page's rows, and which rows they took.
fn tables_of(rows: &[Vec<Glyph>]) -> (Vec<Table>, Vec<bool>) {
    // Only a row with a gap wider than a cell gap can be a table's row: prose rows are not cut.
    let has_gap = |row: &[Glyph]| row.windows(2).any(|w| w[1].x - w[0].end > CELL_GAP * w[1].size.max(w[0].size));
    let cells: Vec<Vec<Line>> =
        rows.iter().map(|r| if has_gap(r) { segments(r, CELL_GAP) } else { Vec::new() }).collect();
    let tabular = |c: &[Line]| {
        let mean = c.iter().map(|l| l.text.trim().chars().count()).sum::<usize>() / c.len().max(1);
        c.len() >= 3 && mean <= MAX_MEAN_CELL_CHARS || c.len() == 2 && mean <= MAX_MEAN_PAIR_CHARS
    };
    let mut used = vec![false; rows.len()];
    let mut tables = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        if !tabular(&cells[i]) {
            i += 1;
            continue;
        }
        let mut columns = spans(&cells[i]);
        let mut j = i + 1;
        while j < rows.len() && tabular(&cells[j]) {
            // Rows of one table are close: no more than two and a half lines apart.
            let size = cells[j][0].size.max(cells[j - 1][0].size);
            if cells[j - 1][0].y - cells[j][0].y > 2.5 * size {
                break;
            }
            let merged = merge(&columns, &spans(&cells[j]));
            // A cell across a channel of the rows above merges two columns: the table ends.
            if merged.len() < columns.len() {
                break;
            }
            columns = merged;
            j += 1;
        }
        if j - i >= 3 && columns.len() >= 2 {
            let table_rows = cells[i..j]
                .iter()
                .map(|row| {
                    let mut out = vec![String::new(); columns.len()];
                    for cell in row {
                        let middle = (cell.start + cell.end) / 2.0;
                        let k = columns.iter().position(|(s, e)| middle >= *s && middle <= *e).unwrap_or(0);
                        if !out[k].is_empty() {
                            out[k].push(' ');
                        }
                        out[k].push_str(cell.text.trim());
                    }
                    out
                })
                .collect();
            tables.push(Table { y: cells[i][0].y, rows: table_rows, taken: i..j });
            used[i..j].iter_mut().for_each(|u| *u = true);
            i = j;
        } else {
            i += 1;
        }
    }
    (tables, used)
}

/// Tables among positioned words (a recognised page's: left, right, top and height, y growing
/// downwards, and text): each table's cells, and the indexes of the words it took.
pub(crate) fn tables_in_words(words: &[([f64; 4], &str)]) -> Vec<(Vec<Vec<String>>, Vec<usize>)> {
    let glyphs = words
        .iter()
        .enumerate()
        .map(|(index, ([left, right, top, height], text))| Glyph {
            x: *left,
            end: *right,
            // Rows are read top to bottom by falling y, as on a PDF page.
            y: -(top + height / 2.0),
            size: height.max(1.0),
            text: text.to_string(),
            index,
        })
        .collect();
    let rows = rows_of(glyphs);
    let (tables, _) = tables_of(&rows);
    tables
        .into_iter()
        .map(|t| {
            let taken = rows[t.taken.clone()].iter().flatten().map(|g| g.index).collect();
            (t.rows, taken)
        })
        .collect()
}

/// The x-spans a row's cells cover.
fn spans(cells: &[Line]) -> Vec<(f64, f64)> {
    cells.iter().map(|c| (c.start, c.end)).collect()
}

/// The union of two sets of spans, as disjoint spans left to right.
fn merge(a: &[(f64, f64)], b: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut all: Vec<(f64, f64)> = a.iter().chain(b).copied().collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (s, e) in all {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// The x of a gutter, if body lines fall on either side of one.
fn gutter(lines: &[Line], width: f64) -> Option<f64> {
    if lines.len() < 4 {
        return None;
    }
    let candidates = (25..=75).map(|p| width * f64::from(p) / 100.0);
    let mut best: Option<(f64, usize)> = None;
    for x in candidates {
        let crossing = lines.iter().filter(|l| l.start < x && l.end > x).count();
        let left = lines.iter().filter(|l| l.end <= x).count();
        let right = lines.iter().filter(|l| l.start >= x).count();
        let enough = left * 4 >= lines.len() && right * 4 >= lines.len();
        if enough && crossing * 5 <= lines.len() && best.is_none_or(|(_, c)| crossing < c) {
            best = Some((x, crossing));
        }
    }
    best.map(|(x, _)| x)
}

/// A paragraph of a page (or a table) and where its lines stand: `(start, length)` in
/// characters of `text`, and `[left, top, right, bottom]` in points from the page's top-left
/// corner.
#[derive(Debug, Clone, Default)]
pub struct Placed {
    pub text: String,
    pub lines: Vec<(usize, usize, [f32; 4])>,
}

/// A page's paragraphs and tables in reading order, and its width and height in points.
#[derive(Debug, Clone, Default)]
pub struct PageText {
    pub paragraphs: Vec<Placed>,
    pub size: [f32; 2],
}

impl PageText {
    /// Characters of the page's text, white space aside.
    pub fn visible_chars(&self) -> usize {
        self.paragraphs.iter().map(|p| p.text.chars().filter(|c| !c.is_whitespace()).count()).sum()
    }
}

/// Converts PDF coordinates (y up from the media box's corner) to boxes from the top-left.
#[derive(Clone, Copy)]
struct Frame {
    left: f64,
    top: f64,
}

impl Frame {
    /// A line's box: from its baseline, ascenders up to 0.8 of its size, descenders 0.2 down.
    fn bbox(self, start: f64, end: f64, y: f64, size: f64) -> [f32; 4] {
        self.rect(start, end, y + 0.8 * size, y - 0.2 * size)
    }

    /// The box from `left` to `right` and from `top` down to `bottom` (PDF coordinates).
    fn rect(self, left: f64, right: f64, top: f64, bottom: f64) -> [f32; 4] {
        let r = |v: f64| ((v * 10.0).round() / 10.0) as f32;
        [r(left - self.left), r(self.top - top), r(right - self.left), r(self.top - bottom)]
    }
}

/// Lines into paragraphs: a gap wider than a line and a half starts a new one.
fn join(lines: &[&Line], frame: Frame) -> Vec<Placed> {
    let mut out: Vec<Placed> = Vec::new();
    let mut prev: Option<&Line> = None;
    for line in lines {
        let text = line.text.trim();
        if text.is_empty() {
            continue;
        }
        let new_paragraph = prev.is_none_or(|p| p.y - line.y > 1.8 * line.size.max(p.size));
        if new_paragraph || out.is_empty() {
            out.push(Placed::default());
        }
        let Some(paragraph) = out.last_mut() else { continue };
        if !paragraph.text.is_empty() {
            paragraph.text.push('\n');
        }
        let start = paragraph.text.chars().count();
        paragraph.text.push_str(text);
        paragraph.lines.push((start, text.chars().count(), frame.bbox(line.start, line.end, line.y, line.size)));
        prev = Some(line);
    }
    out
}

/// Each page's text in reading order, its tables as Markdown tables, with where it stands.
pub fn pages_in_reading_order(collector: Collector) -> Vec<PageText> {
    collector.pages.into_iter().map(|(media, glyphs)| page_text(media, glyphs)).collect()
}

fn page_text(media: [f64; 4], glyphs: Vec<Glyph>) -> PageText {
    let [llx, lly, urx, ury] = media;
    let (width, frame) = ((urx - llx).abs().max(1.0), Frame { left: llx.min(urx), top: lly.max(ury) });
    let size = [((urx - llx).abs()) as f32, ((ury - lly).abs()) as f32];
    let rows = rows_of(glyphs);
    let (tables, used) = tables_of(&rows);
    let rest: Vec<&Vec<Glyph>> = rows.iter().zip(&used).filter(|(_, u)| !**u).map(|(r, _)| r).collect();
    let lines = lines_of(&rest);
    // A table is one paragraph, one box around its rows.
    let table_block = |t: &Table| {
        let text = crate::chunk::markdown_table(&t.rows);
        let glyphs = rows[t.taken.clone()].iter().flatten();
        let (mut x0, mut x1, mut top, mut bottom) = (f64::MAX, f64::MIN, f64::MIN, f64::MAX);
        for g in glyphs {
            (x0, x1, top, bottom) =
                (x0.min(g.x), x1.max(g.end), top.max(g.y + 0.8 * g.size), bottom.min(g.y - 0.2 * g.size));
        }
        let bbox = frame.rect(x0, x1, top, bottom);
        let len = text.chars().count();
        Placed { text, lines: vec![(0, len, bbox)] }
    };
    let paragraphs = match gutter(&lines, width) {
        None => {
            // One column: text and tables top to bottom.
            let mut blocks: Vec<(f64, Vec<Placed>)> = tables.iter().map(|t| (t.y, vec![table_block(t)])).collect();
            let mut run: Vec<&Line> = Vec::new();
            for line in &lines {
                let table_between = run.last().is_some_and(|prev| tables.iter().any(|t| prev.y > t.y && t.y > line.y));
                if table_between {
                    blocks.push((run[0].y, join(&run, frame)));
                    run.clear();
                }
                run.push(line);
            }
            if let Some(first) = run.first() {
                blocks.push((first.y, join(&run, frame)));
            }
            blocks.sort_by(|a, b| b.0.total_cmp(&a.0));
            blocks.into_iter().flat_map(|(_, p)| p).collect()
        }
        Some(x) => {
            let first_column_y =
                lines.iter().filter(|l| l.end <= x || l.start >= x).map(|l| l.y).fold(f64::MIN, f64::max);
            let spanning = |l: &&Line| l.start < x && l.end > x;
            let above: Vec<&Line> = lines.iter().filter(|l| spanning(l) && l.y > first_column_y).collect();
            let below: Vec<&Line> = lines.iter().filter(|l| spanning(l) && l.y <= first_column_y).collect();
            let left: Vec<&Line> = lines.iter().filter(|l| l.end <= x).collect();
            let right: Vec<&Line> = lines.iter().filter(|l| l.start >= x).collect();
            // Tables on a two-column page stand above the columns or after them.
            let tables_above = tables.iter().filter(|t| t.y > first_column_y).map(table_block);
            let tables_below: Vec<Placed> = tables.iter().filter(|t| t.y <= first_column_y).map(table_block).collect();
            join(&above, frame)
                .into_iter()
                .chain(tables_above)
                .chain(join(&left, frame))
                .chain(join(&right, frame))
                .chain(tables_below)
                .chain(join(&below, frame))
                .collect()
        }
    };
    PageText { paragraphs, size }
}
