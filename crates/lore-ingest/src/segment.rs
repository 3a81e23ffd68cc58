//! Text to index terms, the same way for documents and queries: NFKC, lowercase, jieba for runs
//! of CJK text (search mode, so both words and their parts are terms), Unicode word boundaries
//! for everything else, with English words reduced to their stem (Snowball), so "retrieval"
//! finds "retrieved". Punctuation and whitespace never become terms.

use std::sync::LazyLock;

use jieba_rs::Jieba;
use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

static JIEBA: LazyLock<Jieba> = LazyLock::new(Jieba::new);
static STEMMER: LazyLock<rust_stemmers::Stemmer> =
    LazyLock::new(|| rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English));

/// The stem of an English word; anything else (numbers, other scripts, mixed tokens) as it is.
fn stem(word: &str) -> String {
    if word.len() > 3 && word.bytes().all(|b| b.is_ascii_lowercase() || b == b'\'') {
        STEMMER.stem(word).into_owned()
    } else {
        word.to_string()
    }
}

/// Loads the dictionary now rather than on the first document (it takes a moment).
pub fn warm_up() {
    LazyLock::force(&JIEBA);
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F // Han
        | 0x3040..=0x30FF // kana
        | 0xAC00..=0xD7AF // hangul
    )
}

/// The terms of a text, in order, with repetitions (documents need term frequencies).
pub fn terms(text: &str) -> Vec<String> {
    let normalized: String = text.nfkc().flat_map(char::to_lowercase).collect();
    let mut out = Vec::new();
    let mut rest = normalized.as_str();
    while !rest.is_empty() {
        let first_cjk = rest.chars().next().is_some_and(is_cjk);
        let run_end = rest.char_indices().find(|(_, c)| is_cjk(*c) != first_cjk).map(|(i, _)| i).unwrap_or(rest.len());
        let (run, tail) = rest.split_at(run_end);
        if first_cjk {
            out.extend(
                JIEBA
                    .cut_for_search(run, true)
                    .into_iter()
                    .filter(|t| t.word.chars().any(char::is_alphanumeric))
                    .map(|t| t.word.to_string()),
            );
        } else {
            out.extend(run.unicode_words().map(stem));
        }
        rest = tail;
    }
    out
}

/// Terms of a query: as for documents, without repetitions.
pub fn query_terms(query: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    terms(query).into_iter().filter(|t| seen.insert(t.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_is_segmented_into_words() {
        let t = terms("中文分词是搜索引擎的基础");
        for w in ["中文", "分词", "搜索", "引擎", "基础"] {
            assert!(t.iter().any(|x| x == w), "{w} missing from {t:?}");
        }
        assert!(!t.iter().any(|x| x == "，"));
    }

    #[test]
    fn english_is_lowercased_words_and_mixed_text_works() {
        assert_eq!(terms("Hello, World! Rust's 2024 edition"), vec!["hello", "world", "rust", "2024", "edit"]);
        assert_eq!(terms("retrieval retrieved Retrieving"), vec!["retriev", "retriev", "retriev"]);
        let t = terms("Lore用jieba做中文分词, FAST search");
        for w in ["lore", "用", "jieba", "中文", "分词", "fast", "search"] {
            assert!(t.iter().any(|x| x == w), "{w} missing from {t:?}");
        }
    }

    #[test]
    fn full_width_forms_are_normalised() {
        assert_eq!(terms("ＡＢＣ１２３"), vec!["abc123"]);
    }

    #[test]
    fn query_terms_are_unique() {
        assert_eq!(query_terms("search Search SEARCHES searching"), vec!["search"]);
    }
}
