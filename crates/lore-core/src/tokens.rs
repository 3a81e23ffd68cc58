//! Rough token arithmetic for when no tokenizer is at hand: a CJK character is about one token,
//! other text about four characters a token.

/// Chinese, Japanese and Korean characters (ideographs, kana, hangul).
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// An estimate of the tokens of `text`.
pub fn estimate(text: &str) -> usize {
    let (mut cjk, mut other) = (0usize, 0usize);
    for c in text.chars() {
        if is_cjk(c) {
            cjk += 1;
        } else {
            other += 1;
        }
    }
    cjk + other.div_ceil(4)
}

#[cfg(test)]
mod tests {
    #[test]
    fn estimates_chinese_and_english() {
        assert_eq!(super::estimate("知识库"), 3);
        assert_eq!(super::estimate("abcdefgh"), 2);
        assert_eq!(super::estimate("知识 base"), 4);
        assert_eq!(super::estimate(""), 0);
    }
}
