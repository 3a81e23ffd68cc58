//! Extractive summaries: a chunk's lead sentences, the part that usually says what it is about.

/// Sentences from the start of `text` while they fit in `max_chars` (at least one sentence,
/// cut at `max_chars` if that first sentence is longer). Chinese and Western sentence ends alike.
pub fn lead(text: &str, max_chars: usize) -> String {
    let text = text.trim();
    let mut end = 0;
    let mut chars = 0;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        chars += 1;
        let next = iter.peek().map(|(_, n)| *n);
        let sentence_end = matches!(c, '。' | '！' | '？' | '；' | '\n')
            || (matches!(c, '.' | '!' | '?') && next.is_none_or(char::is_whitespace));
        if sentence_end {
            if chars > max_chars && end > 0 {
                break;
            }
            end = i + c.len_utf8();
            if chars >= max_chars {
                break;
            }
        } else if chars >= max_chars && end == 0 {
            end = i + c.len_utf8();
            break;
        }
    }
    if end == 0 { text.to_string() } else { text[..end].trim().to_string() }
}

#[cfg(test)]
mod tests {
    use super::lead;

    #[test]
    fn keeps_whole_sentences() {
        let en = "Lore indexes documents. It answers questions with citations. It runs anywhere.";
        assert_eq!(lead(en, 30), "Lore indexes documents.");
        assert_eq!(lead(en, 70), "Lore indexes documents. It answers questions with citations.");
        assert_eq!(lead(en, 500), en);
        let zh = "北京是中国的首都。它有三千多年的历史。长城在北京北部。";
        assert_eq!(lead(zh, 12), "北京是中国的首都。");
        assert_eq!(lead(zh, 20), "北京是中国的首都。它有三千多年的历史。");
    }

    #[test]
    fn cuts_a_long_first_sentence() {
        let long = "a".repeat(50);
        assert_eq!(lead(&long, 10).chars().count(), 10);
        assert_eq!(lead("3.14 is pi. Yes.", 12), "3.14 is pi.");
    }
}
