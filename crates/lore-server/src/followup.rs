//! Follow-up questions in a multi-turn conversation lean on earlier ones: "它防水吗？" and "what
//! about its price?" name nothing to search for. Before an agent retrieves, such a question is
//! searched together with the terms of the questions it leans on, back to the last one that
//! stood on its own ("智能音箱支持哪些语言？"). The answer is still written to the question as
//! asked. This is the rule-based rewrite, which needs no chat model; an agent turns it off with
//! `model_parameters.rewrite_follow_ups: false`.

use std::collections::HashSet;

use lore_ingest::segment;
use lore_llm::{Message, Role};

/// Words that point back at something said before.
const POINTERS_ZH: &[&str] = &["它", "它们", "这个", "那个", "这款", "那款", "这种", "那种", "该产品"];
const POINTERS_EN: &[&str] = &["it", "its", "it's", "they", "them", "their", "this", "that", "these", "those"];
/// Terms that carry no subject: question words and the like.
const EMPTY_TERMS: &[&str] = &[
    "什么",
    "哪些",
    "哪个",
    "多少",
    "怎么",
    "怎样",
    "如何",
    "为什么",
    "吗",
    "呢",
    "吧",
    "是",
    "的",
    "了",
    "有",
    "支持",
    "可以",
    "能",
    "what",
    "which",
    "how",
    "why",
    "when",
    "where",
    "who",
    "is",
    "are",
    "was",
    "were",
    "do",
    "does",
    "did",
    "the",
    "a",
    "an",
    "of",
    "to",
    "and",
    "or",
    "about",
    "can",
    "could",
    "will",
    "would",
    "support",
    "supports",
];

/// Whether a question leans on what was said before: it points back, or asks "and …?" / "…呢？"
/// with too little of its own.
pub fn leans_on_context(question: &str) -> bool {
    let q = question.trim();
    let lower = q.to_lowercase();
    let words: Vec<&str> =
        lower.split(|c: char| !(c.is_alphanumeric() || c == '\'')).filter(|w| !w.is_empty()).collect();
    let bare = q.trim_end_matches(['?', '？', '!', '！', '.', '。', ' ']);
    POINTERS_ZH.iter().any(|p| q.contains(p))
        || words.iter().any(|w| POINTERS_EN.contains(w))
        || bare.ends_with('呢')
        || lower.starts_with("what about")
        || lower.starts_with("and ")
        || lower.starts_with("how about")
        || subject_terms(q).is_empty()
}

fn subject_terms(text: &str) -> Vec<String> {
    segment::query_terms(text).into_iter().filter(|t| !EMPTY_TERMS.contains(&t.as_str())).collect()
}

/// The query an agent searches with for `question` after `history` (oldest first): the question
/// itself, or for a follow-up, the subject terms of the questions it leans on, then the question.
pub fn search_query(question: &str, history: &[Message]) -> Option<String> {
    if !leans_on_context(question) {
        return None;
    }
    let own: HashSet<String> = subject_terms(question).into_iter().collect();
    let mut carried: Vec<String> = Vec::new();
    // Back through the user's questions, to the last one that stood on its own.
    for earlier in history.iter().rev().filter(|m| m.role == Role::User) {
        let mut terms: Vec<String> =
            subject_terms(&earlier.content).into_iter().filter(|t| !own.contains(t) && !carried.contains(t)).collect();
        terms.append(&mut carried);
        carried = terms;
        if !leans_on_context(&earlier.content) {
            break;
        }
    }
    (!carried.is_empty()).then(|| format!("{} {question}", carried.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(text: &str) -> Message {
        Message::new(Role::User, text)
    }

    #[test]
    fn follow_ups_carry_the_subject_of_the_question_they_lean_on() {
        let history = vec![
            user("智能音箱支持哪些语言？"),
            Message::new(Role::Assistant, "支持中文和英文。"),
            user("它防水吗？"),
            Message::new(Role::Assistant, "不防水。"),
        ];
        let query = search_query("它的价格呢？", &history).expect("a follow-up");
        assert!(query.contains("智能") && query.contains("音箱") && query.ends_with("它的价格呢？"), "{query}");
        assert!(query.contains("防水"), "the question between is carried too: {query}");
        let english = vec![user("Does the smart speaker support Chinese?")];
        let query = search_query("What about its price?", &english).expect("a follow-up");
        assert!(query.contains("speaker") && !query.starts_with("does"), "{query}");
    }

    #[test]
    fn questions_that_stand_alone_are_searched_as_asked() {
        let history = vec![user("智能音箱支持哪些语言？")];
        assert_eq!(search_query("智能手表的电池能用几天？", &history), None);
        assert_eq!(search_query("How long does shipping take?", &history), None);
        assert_eq!(search_query("它的价格呢？", &[]), None, "nothing to lean on");
    }
}
