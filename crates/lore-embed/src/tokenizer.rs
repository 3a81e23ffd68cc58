//! SentencePiece unigram tokenisation (the XLM-RoBERTa vocabulary of multilingual-e5):
//! per-code-point normalisation, the metaspace marker, then the Viterbi path of highest total
//! piece score, with one unknown piece per code point no piece covers.

use std::collections::HashMap;

/// The SentencePiece metaspace marker, U+2581, which stands for a space.
const METASPACE: char = '\u{2581}';

#[derive(Debug)]
pub struct Unigram {
    ids: HashMap<Box<[u8]>, u32>,
    scores: Vec<f32>,
    normalize: HashMap<char, Box<str>>,
    pub bos: u32,
    pub eos: u32,
    pub unk: u32,
    unk_score: f32,
    max_piece_bytes: usize,
}

impl Unigram {
    /// `pieces[i]` and `scores[i]` describe token id `i`; `normalize` maps a code point to its replacement.
    pub fn new(
        pieces: Vec<Vec<u8>>,
        scores: Vec<f32>,
        normalize: HashMap<char, Box<str>>,
        (bos, eos, unk): (u32, u32, u32),
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
        Unigram { ids, scores, normalize, bos, eos, unk, unk_score: min_score - 10.0, max_piece_bytes }
    }

    pub fn vocab_size(&self) -> usize {
        self.scores.len()
    }

    /// The content token ids of `text`, without the sentence markers.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        // Normalise, collapse runs of spaces, prefix a metaspace, and spell spaces as metaspaces.
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
    fn unknown_code_points_and_spaces() {
        let t = toy();
        assert_eq!(t.encode("hello  \t x"), vec![6, 3, 2], "runs of spaces collapse; x is unknown");
        assert!(t.encode("").len() == 1, "an empty text is one metaspace");
    }
}
