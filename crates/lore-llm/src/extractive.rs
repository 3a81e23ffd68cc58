//! The answerer used when an agent has no language model: it picks the sentences of the retrieved
//! passages that share the most with the question, cites each, and says that it is extractive.

use crate::is_cjk;

/// A retrieved passage, numbered as it is cited (`[1]`, `[2]` ...).
pub struct Passage<'a> {
    pub index: usize,
    pub text: &'a str,
}

/// Sentences quoted at most.
const MAX_SENTENCES: usize = 3;
/// A quoted sentence is cut beyond this many characters.
const MAX_SENTENCE_CHARS: usize = 300;

/// Whether the question is mostly Chinese (or Japanese, Korean): the answer's own words follow it.
pub fn is_cjk_text(text: &str) -> bool {
    let cjk = text.chars().filter(|c| is_cjk(*c)).count();
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    cjk * 2 >= letters.max(1)
}

/// The answer to a question from passages ranked best first. `terms` are the question's search
/// terms (segmented, lower-cased), as the full-text search uses them.
pub fn answer(question: &str, terms: &[String], passages: &[Passage]) -> String {
    let chinese = is_cjk_text(question);
    if passages.is_empty() {
        return if chinese {
            "知识库中没有找到与这个问题相关的内容。（摘录式回答：未配置语言模型。）".to_string()
        } else {
            "I found nothing in the knowledge base about this. (Extractive answer: no language model is configured.)"
                .to_string()
        };
    }
    // Every sentence scored by the question terms it holds, rarer (longer) terms counting more,
    // with a small preference for better-ranked passages.
    let mut candidates: Vec<(f64, usize, usize, String)> = Vec::new();
    for (rank, passage) in passages.iter().enumerate() {
        for (position, sentence) in sentences(passage.text).into_iter().enumerate() {
            let lower = sentence.to_lowercase();
            let matched: f64 = terms
                .iter()
                .filter(|t| !t.is_empty() && lower.contains(t.as_str()))
                .map(|t| (t.chars().count() as f64).sqrt())
                .sum();
            if matched > 0.0 {
                let score = matched / (1.0 + 0.15 * rank as f64);
                candidates.push((score, rank, position, sentence));
            }
        }
    }
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    candidates.truncate(MAX_SENTENCES);
    if candidates.is_empty() {
        // No sentence shares a word with the question: quote the best passage's opening.
        let first = sentences(passages[0].text).into_iter().next().unwrap_or_default();
        candidates.push((0.0, 0, 0, first));
    }
    // Quoted in reading order: by passage rank, then position in the passage.
    candidates.sort_by(|a, b| a.1.cmp(&b.1).then(a.2.cmp(&b.2)));
    let quoted: Vec<String> = candidates
        .into_iter()
        .map(|(_, rank, _, sentence)| format!("{} [{}]", clip(&sentence), passages[rank].index))
        .collect();
    let (lead, separator) = if chinese {
        ("根据知识库中的资料（摘录式回答：未配置语言模型）：\n", "\n")
    } else {
        ("From the knowledge base (extractive answer: no language model is configured):\n", "\n")
    };
    format!("{lead}{}", quoted.join(separator))
}

fn clip(sentence: &str) -> String {
    if sentence.chars().count() <= MAX_SENTENCE_CHARS {
        return sentence.to_string();
    }
    let mut cut: String = sentence.chars().take(MAX_SENTENCE_CHARS).collect();
    cut.push('…');
    cut
}

/// Sentences of a passage: split after 。！？；, after . ! ? followed by a space, and at line breaks.
fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let boundary = match c {
            '。' | '！' | '？' | '；' | '\n' => true,
            '.' | '!' | '?' => chars.peek().is_none_or(|n| n.is_whitespace()),
            _ => false,
        };
        if c != '\n' {
            current.push(c);
        }
        if boundary {
            let sentence = current.trim();
            if sentence.chars().any(char::is_alphanumeric) {
                out.push(sentence.to_string());
            }
            current.clear();
        }
    }
    let sentence = current.trim();
    if sentence.chars().any(char::is_alphanumeric) {
        out.push(sentence.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_the_matching_sentences_with_citations() {
        let passages = [
            Passage { index: 1, text: "Lore stores vectors in HNSW. The index is rebuilt after a crash. Cats sleep." },
            Passage { index: 2, text: "Unrelated text. A crash never loses an upload." },
        ];
        let terms = vec!["crash".to_string(), "index".to_string()];
        let answer = answer("What happens to the index after a crash?", &terms, &passages);
        assert!(answer.starts_with("From the knowledge base (extractive answer"), "{answer}");
        assert!(answer.contains("The index is rebuilt after a crash. [1]"), "{answer}");
        assert!(answer.contains("A crash never loses an upload. [2]"), "{answer}");
        assert!(!answer.contains("Cats"), "{answer}");
    }

    #[test]
    fn answers_chinese_in_chinese() {
        let passages = [Passage {
            index: 1, text: "知识库支持混合检索。向量索引在崩溃后自动重建！其他内容。"
        }];
        let terms = vec!["崩溃".to_string(), "索引".to_string()];
        let answer = answer("索引崩溃后会怎样？", &terms, &passages);
        assert!(answer.starts_with("根据知识库中的资料"), "{answer}");
        assert!(answer.contains("向量索引在崩溃后自动重建！ [1]"), "{answer}");
        assert!(!answer.contains("其他内容"), "{answer}");
        assert!(super::answer("什么？", &terms, &[]).contains("没有找到"));
    }
}
