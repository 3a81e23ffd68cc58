//! Tokenisers of BERT-family encoders. SentencePiece unigram (XLM-RoBERTa: multilingual-e5,
//! bge-m3): per-code-point normalisation, the metaspace marker, then the Viterbi path of highest
//! total piece score, with one unknown piece per code point no piece covers. WordPiece (BERT:
//! MiniLM, bge-small): BERT's normaliser and pre-tokeniser, then greedy longest-match pieces.

use std::collections::HashMap;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// The tokeniser of a model, with the ids of its sentence markers.
#[derive(Debug)]
pub enum Tokenizer {
    Unigram(Unigram),
    WordPiece(WordPiece),
}

impl Tokenizer {
    /// Content token ids, without the sentence markers.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        match self {
            Tokenizer::Unigram(t) => t.encode(text),
            Tokenizer::WordPiece(t) => t.encode(text),
        }
    }

    /// The ids that open and close every input (`<s>`/`</s>`, `[CLS]`/`[SEP]`).
    pub fn markers(&self) -> (u32, u32) {
        match self {
            Tokenizer::Unigram(t) => (t.bos, t.eos),
            Tokenizer::WordPiece(t) => (t.cls, t.sep),
        }
    }

    pub fn vocab_size(&self) -> usize {
        match self {
            Tokenizer::Unigram(t) => t.vocab_size(),
            Tokenizer::WordPiece(t) => t.vocab.len(),
        }
    }
}

/// BERT's WordPiece with its basic tokeniser (lowercasing, accent stripping, CJK characters as
/// words, punctuation split off).
#[derive(Debug)]
pub struct WordPiece {
    vocab: HashMap<String, u32>,
    pub cls: u32,
    pub sep: u32,
    unk: u32,
    lowercase: bool,
    strip_accents: bool,
    prefix: String,
    max_word_chars: usize,
}

impl WordPiece {
    pub fn new(
        vocab: HashMap<String, u32>, (cls, sep, unk): (u32, u32, u32), lowercase: bool, strip_accents: bool,
        prefix: String,
    ) -> Self {
        WordPiece { vocab, cls, sep, unk, lowercase, strip_accents, prefix, max_word_chars: 100 }
    }

    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        for word in self.words(text) {
            if word.chars().count() > self.max_word_chars {
                ids.push(self.unk);
                continue;
            }
            let mut pieces = Vec::new();
            let mut start = 0;
            let mut ok = true;
            while start < word.len() {
                let mut end = word.len();
                let mut found = None;
                while end > start {
                    let piece = if start == 0 {
                        word[start..end].to_string()
                    } else {
                        format!("{}{}", self.prefix, &word[start..end])
                    };
                    if let Some(&id) = self.vocab.get(&piece) {
                        found = Some(id);
                        break;
                    }
                    end = word[..end].char_indices().next_back().map(|(i, _)| i).unwrap_or(start);
                }
                match found {
                    Some(id) => {
                        pieces.push(id);
                        start = end;
                    }
                    None => {
                        ok = false;
                        break;
                    }
                }
            }
            if ok { ids.extend(pieces) } else { ids.push(self.unk) }
        }
        ids
    }

    /// BERT's basic tokeniser: clean, space out CJK ideographs, lowercase and strip accents, then
    /// split on whitespace and around punctuation.
    fn words(&self, text: &str) -> Vec<String> {
        let mut spaced = String::with_capacity(text.len() + 16);
        for c in text.chars() {
            if c == '\u{0}' || c == '\u{fffd}' || (c.is_control() && !c.is_whitespace()) {
                continue;
            }
            if is_cjk(c) {
                spaced.push(' ');
                spaced.push(c);
                spaced.push(' ');
            } else if c.is_whitespace() {
                spaced.push(' ');
            } else {
                spaced.push(c);
            }
        }
        let normalized: String = if self.lowercase { spaced.to_lowercase() } else { spaced };
        let normalized: String =
            if self.strip_accents { normalized.nfd().filter(|c| !is_combining_mark(*c)).collect() } else { normalized };
        let mut words = Vec::new();
        for token in normalized.split(' ').filter(|t| !t.is_empty()) {
            let mut current = String::new();
            for c in token.chars() {
                if is_punctuation(c) {
                    if !current.is_empty() {
                        words.push(std::mem::take(&mut current));
                    }
                    words.push(c.to_string());
                } else {
                    current.push(c);
                }
            }
            if !current.is_empty() {
                words.push(current);
            }
        }
        words
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F | 0x2B740..=0x2B81F
        | 0x2B820..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

/// ASCII punctuation and symbols as BERT treats them, and Unicode punctuation.
fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(c as u32, 0x2000..=0x206F | 0x3000..=0x303F | 0xFF00..=0xFF0F | 0xFF1A..=0xFF20 | 0xFF3B..=0xFF40 | 0xFF5B..=0xFF65 | 0x00A1..=0x00BF)
}

/// The SentencePiece metaspace marker, U+2581, which stands for a space.
const METASPACE: char = '\u{2581}';

#[derive(Debug)]
pub struct Unigram {
    ids: HashMap<Box<[u8]>, u32>,
    scores: Vec<f32>,
    normalize: HashMap<char, Box<str>>,
    /// NFKC before the map: stands in for the precompiled character map of a tokenizer.json.
    pub nfkc: bool,
    pub bos: u32,
    pub eos: u32,
    pub unk: u32,
    unk_score: f32,
    max_piece_bytes: usize,
}

impl Unigram {
    /// `pieces[i]` and `scores[i]` describe token id `i`; `normalize` maps a code point to its replacement.
    pub fn new(
        pieces: Vec<Vec<u8>>, scores: Vec<f32>, normalize: HashMap<char, Box<str>>, (bos, eos, unk): (u32, u32, u32),
    ) -> Self {
        let mut ids = HashMap::with_capacity(pieces.len());
        let mut max_piece_bytes = 1;
        for (id, piece) in pieces.into_iter().enumerate() {
            if piece.is_empty() || id as u32 == unk {
                continue;
            }
            max_piece_bytes = max_piece_bytes.max(piece.len());
            // The first piece of a given spelling wins, as in SentencePiece.
            ids.entry(piece.into_boxed_slice()).or_insert(id as u32);
        }
        let min_score = scores.iter().copied().fold(f32::INFINITY, f32::min);
        Unigram { ids, scores, normalize, nfkc: false, bos, eos, unk, unk_score: min_score - 10.0, max_piece_bytes }
    }

    pub fn vocab_size(&self) -> usize {
        self.scores.len()
    }

    /// The content token ids of `text`, without the sentence markers.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        // Normalise, collapse runs of spaces, prefix a metaspace, and spell spaces as metaspaces.
        let nfkc: String;
        let text = if self.nfkc {
            nfkc = text.nfkc().collect();
            nfkc.as_str()
        } else {
            text
        };
        let mut chars: Vec<char> = Vec::with_capacity(text.len() + 1);
        for c in text.chars() {
            let replacement = self.normalize.get(&c);
            for c in replacement.map(|r| r.chars().collect::<Vec<_>>()).unwrap_or_else(|| vec![c]) {
                if !(c == ' ' && chars.last() == Some(&' ')) {
                    chars.push(c);
                }
            }
        }
        if chars.first() != Some(&' ') {
            chars.insert(0, ' ');
        }
        let mut normalized = String::with_capacity(chars.len() * 3);
        let mut starts = Vec::with_capacity(chars.len() + 1);
        for c in chars {
            starts.push(normalized.len());
            normalized.push(if c == ' ' { METASPACE } else { c });
        }
        starts.push(normalized.len());
        self.viterbi(normalized.as_bytes(), &starts)
    }

    fn viterbi(&self, bytes: &[u8], starts: &[usize]) -> Vec<u32> {
        let n = starts.len() - 1;
        let mut best = vec![f32::NEG_INFINITY; n + 1];
        let mut piece = vec![u32::MAX; n + 1];
        let mut from = vec![0usize; n + 1];
        best[0] = 0.0;
        for i in 0..n {
            if best[i] == f32::NEG_INFINITY {
                continue;
            }
            for e in i + 1..=n {
                let span = &bytes[starts[i]..starts[e]];
                if span.len() > self.max_piece_bytes {
                    break;
                }
                if let Some(&id) = self.ids.get(span) {
                    let score = best[i] + self.scores[id as usize];
                    if score > best[e] {
                        (best[e], piece[e], from[e]) = (score, id, i);
                    }
                }
            }
            let unknown = best[i] + self.unk_score;
            if unknown > best[i + 1] {
                (best[i + 1], piece[i + 1], from[i + 1]) = (unknown, self.unk, i);
            }
        }
        let mut ids = Vec::new();
        let mut i = n;
        while i > 0 {
            ids.push(piece[i]);
            i = from[i];
        }
        ids.reverse();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> Unigram {
        let pieces = [
            "<s>",
            "</s>",
            "<unk>",
            "\u{2581}",
            "\u{2581}he",
            "llo",
            "\u{2581}hello",
            "h",
            "e",
            "l",
            "o",
            "北京",
            "北",
        ];
        let scores = [0.0, 0.0, 0.0, -1.0, -3.0, -3.0, -2.0, -5.0, -5.0, -5.0, -5.0, -2.0, -4.0];
        let normalize = HashMap::from([('Ｈ', "h".into()), ('\t', " ".into())]);
        Unigram::new(pieces.iter().map(|p| p.as_bytes().to_vec()).collect(), scores.to_vec(), normalize, (0, 1, 2))
    }

    #[test]
    fn picks_the_best_scoring_path() {
        let t = toy();
        assert_eq!(t.encode("hello"), vec![6]);
        assert_eq!(t.encode("Ｈello"), vec![6], "normalisation applies before matching");
        assert_eq!(t.encode("北京"), vec![3, 11]);
    }

    #[test]
    fn wordpiece_splits_like_bert() {
        let vocab: HashMap<String, u32> =
            ["[UNK]", "[CLS]", "[SEP]", "hello", "world", "!", "un", "##aff", "##able", "cafe", "中", "国"]
                .iter()
                .enumerate()
                .map(|(i, w)| (w.to_string(), i as u32))
                .collect();
        let t = WordPiece::new(vocab, (1, 2, 0), true, true, "##".into());
        assert_eq!(t.encode("Hello, WORLD!"), vec![3, 0, 4, 5], "the comma is unknown, the rest lowercased");
        assert_eq!(t.encode("unaffable café"), vec![6, 7, 8, 9], "pieces, and accents stripped");
        assert_eq!(t.encode("中国x"), vec![10, 11, 0], "ideographs are words of their own");
    }

    #[test]
    fn unknown_code_points_and_spaces() {
        let t = toy();
        assert_eq!(t.encode("hello  \t x"), vec![6, 3, 2], "runs of spaces collapse; x is unknown");
        assert!(t.encode("").len() == 1, "an empty text is one metaspace");
    }
}
