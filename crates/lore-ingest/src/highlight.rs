//! Highlights: a short excerpt of a chunk around the query's terms, with the matches wrapped in
//! `<mark>`. The excerpt is HTML-escaped, so it can be shown as HTML safely.

const BEFORE: usize = 40;

/// An excerpt of at most about `max_chars` characters around the first match, or the start of
/// the content when nothing matches literally.
pub fn highlight(content: &str, terms: &[String], max_chars: usize) -> String {
    let chars: Vec<char> = content.chars().collect();
    let lower: Vec<char> = chars.iter().map(|c| c.to_lowercase().next().unwrap_or(*c)).collect();
    let mut marked = vec![false; chars.len()];
    for term in terms {
        let t: Vec<char> = term.chars().collect();
        if t.is_empty() || t.len() > lower.len() {
            continue;
        }
        for start in 0..=lower.len() - t.len() {
            if lower[start..start + t.len()] == t[..] {
                // A stem ("retriev") marks the whole word it starts ("retrieval").
                let mut end = start + t.len();
                if t.iter().all(|c| c.is_ascii_alphanumeric()) {
                    while end < lower.len() && lower[end].is_alphanumeric() {
                        end += 1;
                    }
                }
                marked[start..end].iter_mut().for_each(|m| *m = true);
            }
        }
    }
    let first = marked.iter().position(|m| *m).unwrap_or(0);
    let start = first.saturating_sub(BEFORE);
    let end = (start + max_chars).min(chars.len());
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut open = false;
    for i in start..end {
        if marked[i] && !open {
            out.push_str("<mark>");
            open = true;
        } else if !marked[i] && open {
            out.push_str("</mark>");
            open = false;
        }
        match chars[i] {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    if open {
        out.push_str("</mark>");
    }
    if end < chars.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_chinese_and_english_terms() {
        let h = highlight("Lore 支持中文分词 and Search.", &["中文".into(), "分词".into(), "search".into()], 200);
        assert_eq!(h, "Lore 支持<mark>中文分词</mark> and <mark>Search</mark>.");
    }

    #[test]
    fn stems_mark_whole_words() {
        assert_eq!(
            highlight("Retrieval retrieves.", &["retriev".into()], 100),
            "<mark>Retrieval</mark> <mark>retrieves</mark>."
        );
    }

    #[test]
    fn excerpts_long_text_and_escapes() {
        let text = format!("{}<b>needle</b>{}", "x".repeat(100), "y".repeat(100));
        let h = highlight(&text, &["needle".into()], 60);
        assert!(h.starts_with('…') && h.ends_with('…'), "{h}");
        assert!(h.contains("&lt;b&gt;<mark>needle</mark>&lt;/b&gt;"), "{h}");
    }
}
