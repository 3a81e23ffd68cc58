//! Bytes to text in any common encoding: BOMs first, then UTF-8, then a statistical guess
//! (GB18030/GBK, Big5, Shift_JIS, windows-125x...). Binary data is refused, not garbled.

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE};
use lore_core::error::{Code, Error, Result};

/// Decoded text and the name of the encoding it was read in.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub text: String,
    pub encoding: &'static str,
}

pub fn decode(bytes: &[u8]) -> Result<Decoded> {
    if let Some((encoding, bom_len)) = Encoding::for_bom(bytes) {
        let (text, _) = encoding.decode_without_bom_handling(&bytes[bom_len..]);
        return checked(text.into_owned(), encoding);
    }
    if let Some(encoding) = utf16_without_bom(bytes) {
        let (text, _) = encoding.decode_without_bom_handling(bytes);
        return checked(text.into_owned(), encoding);
    }
    if bytes.contains(&0) {
        return Err(binary());
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return checked(text.to_string(), UTF_8);
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(bytes, true);
    let encoding = detector.guess(None, chardetng::Utf8Detection::Allow);
    let (text, _, had_errors) = encoding.decode(bytes);
    if had_errors {
        let replaced = text.chars().filter(|c| *c == '\u{FFFD}').count();
        if replaced * 50 > text.chars().count().max(1) {
            return Err(binary());
        }
    }
    checked(text.into_owned(), encoding)
}

/// UTF-16 without a BOM shows as NUL bytes in every other position of mostly-ASCII text.
fn utf16_without_bom(bytes: &[u8]) -> Option<&'static Encoding> {
    if bytes.len() < 4 || !bytes.len().is_multiple_of(2) {
        return None;
    }
    let pairs = bytes.len() / 2;
    let even_nuls = bytes.iter().step_by(2).filter(|b| **b == 0).count();
    let odd_nuls = bytes.iter().skip(1).step_by(2).filter(|b| **b == 0).count();
    if odd_nuls * 10 >= pairs * 7 && even_nuls == 0 {
        Some(UTF_16LE)
    } else if even_nuls * 10 >= pairs * 7 && odd_nuls == 0 {
        Some(UTF_16BE)
    } else {
        None
    }
}

fn binary() -> Error {
    Error::new(
        Code::BinaryContent,
        "the file does not contain readable text: it looks like binary data (is it an image, archive or other binary format uploaded under a text name?)",
    )
}

/// Rejects text that decoded but is mostly control characters: binary in disguise.
fn checked(text: String, encoding: &'static Encoding) -> Result<Decoded> {
    let total = text.chars().count();
    let control = text
        .chars()
        .filter(|c| (c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\x0c')) || *c == '\u{FFFD}')
        .count();
    if total > 0 && control * 20 > total {
        return Err(binary());
    }
    Ok(Decoded { text, encoding: encoding.name() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZH: &str = "中文分词是搜索引擎的基础。知识库需要正确处理简体中文和繁體中文的文本，包括标点符号。";

    #[test]
    fn utf8_and_boms() {
        assert_eq!(decode("hello 世界".as_bytes()).expect("utf8").text, "hello 世界");
        let mut bom8 = vec![0xEF, 0xBB, 0xBF];
        bom8.extend_from_slice("你好".as_bytes());
        assert_eq!(decode(&bom8).expect("bom8").text, "你好");
        let mut le = vec![0xFF, 0xFE];
        for u in "知识库 test".encode_utf16() {
            le.extend_from_slice(&u.to_le_bytes());
        }
        let d = decode(&le).expect("utf16le");
        assert_eq!((d.text.as_str(), d.encoding), ("知识库 test", "UTF-16LE"));
        let mut be = vec![0xFE, 0xFF];
        for u in "知识库 test".encode_utf16() {
            be.extend_from_slice(&u.to_be_bytes());
        }
        assert_eq!(decode(&be).expect("utf16be").text, "知识库 test");
    }

    #[test]
    fn utf16_without_bom_is_recognised() {
        let mut le = Vec::new();
        for u in "plain ascii text in utf-16".encode_utf16() {
            le.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(decode(&le).expect("utf16le").text, "plain ascii text in utf-16");
    }

    #[test]
    fn legacy_chinese_encodings() {
        let (gbk, _, _) = encoding_rs::GBK.encode(ZH);
        let d = decode(&gbk).expect("gbk");
        assert_eq!(d.text, ZH);
        assert!(d.encoding == "GBK" || d.encoding == "gb18030", "{}", d.encoding);

        let traditional = "中文分詞是搜尋引擎的基礎。知識庫需要正確處理繁體中文的文本，包括標點符號和常用詞彙。";
        let (big5, _, _) = encoding_rs::BIG5.encode(traditional);
        let d = decode(&big5).expect("big5");
        assert_eq!(d.text, traditional);
        assert_eq!(d.encoding, "Big5");
    }

    #[test]
    fn binary_is_refused() {
        let mut noise = Vec::new();
        let mut x: u32 = 12345;
        for _ in 0..4096 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            noise.push((x & 0xFF) as u8);
        }
        let err = decode(&noise).expect_err("random bytes");
        assert_eq!(err.code, Code::BinaryContent);
    }
}
