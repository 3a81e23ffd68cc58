//! PDF text in reading order. Glyphs are collected with their positions, grouped into lines,
//! and each page is checked for a gutter: a vertical band that body lines do not cross. A page
//! with a gutter is read left column first, then right; lines that span both (titles) keep
//! their place above or below the columns.

use pdf_extract::{MediaBox, OutputDev, OutputError, Transform};

#[derive(Debug, Clone)]
struct Glyph {
    x: f64,
    end: f64,
    y: f64,
    size: f64,
    text: String,
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
    pages: Vec<(f64, Vec<Glyph>)>,
}

impl OutputDev for Collector {
    fn begin_page(&mut self, _: u32, media_box: &MediaBox, _: Option<(f64, f64, f64, f64)>) -> Result<(), OutputError> {
        self.pages.push(((media_box.urx - media_box.llx).abs().max(1.0), Vec::new()));
        Ok(())
    }
    fn end_page(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
    fn output_character(
        &mut self,
        trm: &Transform,
        width: f64,
        _: f64,
        font_size: f64,
        text: &str,
    ) -> Result<(), OutputError> {
        let v = trm.transform_vector(euclid::vec2(font_size, font_size));
        let size = (v.x * v.y).abs().sqrt().max(0.1);
        if let Some((_, glyphs)) = self.pages.last_mut() {
            glyphs.push(Glyph { x: trm.m31, end: trm.m31 + width * size, y: trm.m32, size, text: text.to_string() });
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

fn lines_of(mut glyphs: Vec<Glyph>) -> Vec<Line> {
    glyphs.sort_by(|a, b| b.y.total_cmp(&a.y).then(a.x.total_cmp(&b.x)));
    let mut rows: Vec<Vec<Glyph>> = Vec::new();
    for g in glyphs {
        match rows.last_mut() {
            Some(row) if (row[0].y - g.y).abs() < 0.5 * row[0].size.max(g.size) => row.push(g),
            _ => rows.push(vec![g]),
        }
    }
    let mut lines = Vec::new();
    for mut row in rows {
        row.sort_by(|a, b| a.x.total_cmp(&b.x));
        // Split a row where a wide gap separates glyphs: two columns side by side.
        let mut current: Vec<Glyph> = Vec::new();
        let flush = |current: &mut Vec<Glyph>, lines: &mut Vec<Line>| {
            if current.is_empty() {
                return;
            }
            let mut text = String::new();
            let mut last_end: Option<f64> = None;
            for g in current.iter() {
                if let Some(end) = last_end
                    && g.x - end > 0.2 * g.size
                    && !text.ends_with(' ')
                    && !g.text.starts_with(' ')
                {
                    text.push(' ');
                }
                text.push_str(&g.text);
                last_end = Some(g.end);
            }
            let size = current.iter().map(|g| g.size).fold(0.0, f64::max);
            lines.push(Line {
                y: current[0].y,
                start: current[0].x,
                end: last_end.unwrap_or(current[0].x),
                size,
                text,
            });
            current.clear();
        };
        for g in row {
            if let Some(prev) = current.last()
                && g.x - prev.end > 2.5 * g.size.max(prev.size)
            {
                flush(&mut current, &mut lines);
            }
            current.push(g);
        }
        flush(&mut current, &mut lines);
    }
    lines
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

fn join(lines: &[&Line]) -> String {
    let mut out = String::new();
    let mut prev: Option<&Line> = None;
    for line in lines {
        if let Some(p) = prev {
            // A gap wider than a line and a half starts a new paragraph.
            out.push_str(if p.y - line.y > 1.8 * line.size.max(p.size) { "\n\n" } else { "\n" });
        }
        out.push_str(line.text.trim());
        prev = Some(line);
    }
    out
}

/// Each page's text in reading order.
pub fn pages_in_reading_order(collector: Collector) -> Vec<String> {
    collector
        .pages
        .into_iter()
        .map(|(width, glyphs)| {
            let lines = lines_of(glyphs);
            let Some(x) = gutter(&lines, width) else {
                return join(&lines.iter().collect::<Vec<_>>());
            };
            let first_column_y =
                lines.iter().filter(|l| l.end <= x || l.start >= x).map(|l| l.y).fold(f64::MIN, f64::max);
            let spanning = |l: &&Line| l.start < x && l.end > x;
            let above: Vec<&Line> = lines.iter().filter(|l| spanning(l) && l.y > first_column_y).collect();
            let below: Vec<&Line> = lines.iter().filter(|l| spanning(l) && l.y <= first_column_y).collect();
            let left: Vec<&Line> = lines.iter().filter(|l| l.end <= x).collect();
            let right: Vec<&Line> = lines.iter().filter(|l| l.start >= x).collect();
            [join(&above), join(&left), join(&right), join(&below)]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("\n\n")
        })
        .collect()
}
