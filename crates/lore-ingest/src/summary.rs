//! Extractive summaries: what a chunk is about, told by where it stands (its document's title and
//! section) and by its most central sentences, those that share the most words with the rest of
//! the chunk. A chunk's lead often only sets the scene ("In this study, we…"); its centre says
//! what the chunk keeps coming back to.

use std::collections::HashSet;

use lore_core::tokens::estimate;

/// Sentences weighed for centrality, at most: the work grows with their square, and a chunk a
/// tenant sizes may hold thousands of one-word lines.
const MAX_SENTENCES: usize = 64;

/// Words too common to tell sentences apart.
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "is", "it", "its", "of", "on",
    "or", "that", "the", "this", "to", "was", "were", "which", "with", "的", "了", "是", "在", "和", "与", "及", "也",
    "就", "都", "而", "或",
];

/// The sentences of `text`, trimmed, in order: they end at Chinese and Western sentence marks
/// (a Western one only before white space or the end, so "3.14" stays whole) and at line ends.
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let next = iter.peek().map(|(_, n)| *n);
        let end = matches!(c, '。' | '！' | '？' | '；' | '\n')
            || (matches!(c, '.' | '!' | '?') && next.is_none_or(char::is_whitespace));
        if end {
            let sentence = text[start..i + c.len_utf8()].trim();
            if !sentence.is_empty() {
                out.push(sentence);
            }
            start = i + c.len_utf8();
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// The indices of the sentences to keep, in order: the most central first, while they fit in
/// `max_tokens` (at least one; none past it that shares no word with the others). Centrality is TextRank's sentence similarity summed over the
/// other sentences: shared words over the log of the two sentences' lengths.
fn central(sentences: &[&str], max_tokens: usize) -> Vec<usize> {
    let words: Vec<HashSet<String>> = sentences
        .iter()
        .map(|s| crate::segment::terms(s).into_iter().filter(|t| !STOPWORDS.contains(&t.as_str())).collect())
        .collect();
    let mut score = vec![0f64; sentences.len()];
    for i in 0..sentences.len() {
        for j in i + 1..sentences.len() {
            let shared = words[i].intersection(&words[j]).count();
            if shared == 0 {
                continue;
            }
            let similarity =
                shared as f64 / (((words[i].len() + 1) as f64).ln() + ((words[j].len() + 1) as f64).ln()).max(1.0);
            score[i] += similarity;
            score[j] += similarity;
        }
    }
    let mut order: Vec<usize> = (0..sentences.len()).collect();
    // The most central first; between equals, the earlier.
    order.sort_by(|&a, &b| score[b].total_cmp(&score[a]).then(a.cmp(&b)));
    let mut kept = Vec::new();
    let mut tokens = 0;
    for i in order {
        let len = estimate(sentences[i]);
        // Past the first, a sentence that shares nothing with the rest is not central.
        if !kept.is_empty() && (tokens + len > max_tokens || score[i] == 0.0) {
            continue;
        }
        kept.push(i);
        tokens += len;
        if tokens >= max_tokens {
            break;
        }
    }
    kept.sort_unstable();
    kept
}

/// The longest start of `text` of at most `max_tokens` estimated tokens.
fn cut(text: &str, max_tokens: usize) -> String {
    let mut quarters = 0;
    let end = text
        .char_indices()
        .find(|(_, c)| {
            quarters += if lore_core::tokens::is_cjk(*c) { 4 } else { 1 };
            quarters > max_tokens * 4
        })
        .map_or(text.len(), |(i, _)| i);
    text[..end].to_string()
}

/// Sentences joined back into text: a space after Western punctuation, none after Chinese.
fn join(parts: &[&str]) -> String {
    let mut out = String::new();
    for part in parts {
        if out.chars().last().is_some_and(|c| c.is_ascii()) {
            out.push(' ');
        }
        out.push_str(part);
    }
    out
}

/// A chunk's extractive summary, or `None` when it would say little the chunk and its title do
/// not already say (outside any section, a chunk no longer than a summary, or one whose every
/// sentence it would keep): its embedding is then the chunk's own.
///
/// The summary is `title › section › subsection: central sentences`, the sentences up to about
/// `max_tokens` tokens (as [`lore_core::tokens::estimate`] counts them: a Chinese character is
/// one, an English word about one), a first sentence longer than that cut there.
pub fn extractive(title: Option<&str>, section_path: &[String], text: &str, max_tokens: usize) -> Option<String> {
    if section_path.is_empty() && estimate(text.trim()) <= max_tokens {
        return None;
    }
    let mut all = sentences(text);
    all.truncate(MAX_SENTENCES);
    let kept = central(&all, max_tokens);
    if kept.len() == all.len() && section_path.is_empty() {
        return None;
    }
    let picked: Vec<&str> = kept.iter().map(|&i| all[i]).collect();
    let body = cut(&join(&picked), max_tokens);
    let mut context: Vec<&str> = title.map(str::trim).filter(|t| !t.is_empty()).into_iter().collect();
    context.extend(section_path.iter().map(|s| s.trim()).filter(|s| !s.is_empty() && Some(*s) != title));
    Some(match context.is_empty() {
        true => body,
        false => format!("{}: {body}", context.join(" › ")),
    })
}

/// A heading longer than this is cut: a section path names sections, it does not quote them.
const MAX_HEADING_CHARS: usize = 200;

/// The section path at each of `starts` (char offsets into `text`, in any order): the headings
/// still open there, outermost first. Headings are Markdown-style lines (`#` to `######`), the way
/// parsers write a document's headings. One pass over the text, whatever its headings' number.
pub fn section_paths(text: &str, starts: &[usize]) -> Vec<Vec<String>> {
    let mut order: Vec<usize> = (0..starts.len()).collect();
    order.sort_by_key(|&i| starts[i]);
    let mut order = order.into_iter().peekable();
    let mut paths = vec![Vec::new(); starts.len()];
    let mut open: Vec<(usize, String)> = Vec::new();
    let mut chars = 0;
    let mut assign = |upto: Option<usize>, open: &[(usize, String)]| {
        while let Some(&i) = order.peek() {
            if upto.is_some_and(|offset| starts[i] >= offset) {
                break;
            }
            paths[i] = open.iter().map(|(_, heading)| heading.clone()).collect();
            order.next();
        }
    };
    for line in text.split_inclusive('\n') {
        let hashes = line.bytes().take_while(|b| *b == b'#').count();
        if (1..=6).contains(&hashes) && line[hashes..].starts_with([' ', '\t']) {
            let heading: String = line[hashes..].trim().chars().take(MAX_HEADING_CHARS).collect();
            if !heading.is_empty() {
                // Chunks before this heading see the sections open until now.
                assign(Some(chars), &open);
                open.retain(|(level, _)| *level < hashes);
                open.push((hashes, heading));
            }
        }
        chars += line.chars().count();
    }
    assign(None, &open);
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_end_at_chinese_and_western_marks() {
        let en = "Lore indexes documents. It costs 3.14 dollars! Really?";
        assert_eq!(sentences(en), vec!["Lore indexes documents.", "It costs 3.14 dollars!", "Really?"]);
        let zh = "北京是中国的首都。它有三千多年的历史！\n长城在北京北部";
        assert_eq!(sentences(zh), vec!["北京是中国的首都。", "它有三千多年的历史！", "长城在北京北部"]);
    }

    #[test]
    fn the_central_sentence_is_kept_not_the_lead() {
        let en = "In this study, we looked at many things. Vitamin D deficiency raises fracture risk in older adults. \
                  Older adults with low vitamin D had more hip fractures. Fracture risk fell when vitamin D was given. \
                  The weather was mild that year.";
        let summary = extractive(Some("Vitamin D and fractures"), &[], en, 16).expect("a summary");
        assert!(summary.starts_with("Vitamin D and fractures: "), "{summary}");
        assert!(summary.contains("vitamin D") || summary.contains("Vitamin D deficiency"), "{summary}");
        assert!(!summary.contains("In this study") && !summary.contains("weather"), "{summary}");

        let zh = "本文介绍了一些背景。智能音箱支持中文和英文语音控制。这款智能音箱的语音控制可以识别方言。\
                  用户也可以用语音控制音箱播放音乐。今天天气很好。";
        let summary = extractive(Some("产品手册"), &["智能音箱".to_string()], zh, 30).expect("a summary");
        assert!(summary.starts_with("产品手册 › 智能音箱: "), "{summary}");
        assert!(summary.contains("语音控制"), "{summary}");
        assert!(!summary.contains("背景") && !summary.contains("天气"), "{summary}");
    }

    #[test]
    fn a_chunk_the_summary_would_repeat_has_none() {
        assert_eq!(extractive(Some("T"), &[], "One sentence only.", 64), None);
        assert_eq!(extractive(None, &[], "短句。另一句。", 64), None);
        assert_eq!(extractive(None, &[], &"long words ".repeat(20), 10), None, "one sentence, cut or not");
        // In a section, the section is news to the chunk's embedding.
        let in_section = extractive(Some("手册"), &["安装".to_string()], "短句。", 64);
        assert_eq!(in_section.as_deref(), Some("手册 › 安装: 短句。"));
    }

    #[test]
    fn a_long_first_sentence_is_cut() {
        let long = format!("{}. Short one.", "word ".repeat(100).trim());
        let summary = extractive(None, &[], &long, 20).expect("a summary");
        assert_eq!(summary.chars().count(), 80, "{summary}");
        assert_eq!(cut("中文abcd", 3), "中文abcd");
        assert_eq!(cut("中文abcde", 3), "中文abcd");
    }

    #[test]
    fn a_chunk_of_many_lines_is_weighed_by_its_first_ones() {
        let lines: String = (0..50_000).map(|i| format!("word{} common\n", i % 7)).collect();
        let started = std::time::Instant::now();
        let summary = extractive(None, &[], &lines, 64).expect("a summary");
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
        assert!(summary.starts_with("word"), "{summary}");
    }

    #[test]
    fn section_paths_follow_heading_levels() {
        let text = "# 手册\n前言\n## 安装\n步骤一\n### 细节\n内容\n## Usage\nmore\n";
        let at = |needle: &str| text[..text.find(needle).expect("present")].chars().count();
        let starts = [at("内容"), at("前言"), at("more"), 0, at("## 安装")];
        let paths = section_paths(text, &starts);
        assert_eq!(paths[0], ["手册", "安装", "细节"]);
        assert_eq!(paths[1], ["手册"]);
        assert_eq!(paths[2], ["手册", "Usage"]);
        assert_eq!(paths[3], ["手册"], "a chunk that begins with a heading is in its section");
        assert_eq!(paths[4], ["手册", "安装"]);
        assert!(section_paths("#hashtag\n####### seven\ntext", &[12])[0].is_empty());
        let long = format!("# {}\nbody", "长".repeat(500));
        assert_eq!(section_paths(&long, &[600])[0][0].chars().count(), MAX_HEADING_CHARS);
    }
}
