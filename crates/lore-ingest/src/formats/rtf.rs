//! RTF: the text, control words dropped.

use lore_core::error::Result;

/// RTF: the text, with `\par` as paragraph breaks, `\'hh` decoded in the document's code page
/// (`\ansicpg936` is GBK) and `\uN` as Unicode; font tables, styles and pictures skipped.
pub fn rtf(bytes: &[u8]) -> Result<String> {
    let mut out = String::new();
    let mut pending: Vec<u8> = Vec::new(); // \'hh bytes awaiting decoding
    let mut codepage = encoding_rs::WINDOWS_1252;
    let mut skip_depth: Option<usize> = None;
    let mut depth = 0usize;
    let mut uc_skip = 1usize;
    let mut to_skip = 0usize;
    let mut i = 0;
    let flush = |pending: &mut Vec<u8>, out: &mut String, cp: &'static encoding_rs::Encoding| {
        if !pending.is_empty() {
            out.push_str(&cp.decode_without_bom_handling(pending).0);
            pending.clear();
        }
    };
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'{' => {
                flush(&mut pending, &mut out, codepage);
                depth += 1;
                i += 1;
            }
            b'}' => {
                flush(&mut pending, &mut out, codepage);
                if skip_depth == Some(depth) {
                    skip_depth = None;
                }
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'\\' => {
                i += 1;
                let Some(&next) = bytes.get(i) else { break };
                if next == b'\'' {
                    let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                    if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok())
                        && skip_depth.is_none()
                    {
                        if to_skip > 0 {
                            to_skip -= 1;
                        } else {
                            pending.push(v);
                        }
                    }
                    i += 3;
                    continue;
                }
                flush(&mut pending, &mut out, codepage);
                if !next.is_ascii_alphabetic() {
                    if skip_depth.is_none() {
                        match next {
                            b'\\' | b'{' | b'}' => out.push(next as char),
                            b'~' => out.push('\u{a0}'),
                            b'*' => skip_depth = Some(depth),
                            _ => {}
                        }
                    }
                    i += 1;
                    continue;
                }
                let start = i;
                while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                    i += 1;
                }
                let word = String::from_utf8_lossy(&bytes[start..i]).into_owned();
                let num_start = i;
                if i < bytes.len() && (bytes[i] == b'-' || bytes[i].is_ascii_digit()) {
                    i += 1;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                let param: Option<i64> = std::str::from_utf8(&bytes[num_start..i]).ok().and_then(|s| s.parse().ok());
                if bytes.get(i) == Some(&b' ') {
                    i += 1;
                }
                if skip_depth.is_some() {
                    continue;
                }
                match word.as_str() {
                    "par" | "line" | "sect" | "page" => out.push('\n'),
                    "tab" | "cell" => out.push('\t'),
                    "row" => out.push('\n'),
                    "ansicpg" => {
                        if let Some(cp) = param.and_then(|p| codepage_encoding(p as u16)) {
                            codepage = cp;
                        }
                    }
                    "uc" => uc_skip = param.unwrap_or(1).max(0) as usize,
                    "u" => {
                        if let Some(p) = param {
                            let code = if p < 0 { p + 65536 } else { p } as u32;
                            out.extend(char::from_u32(code));
                            to_skip = uc_skip;
                        }
                    }
                    "fonttbl" | "colortbl" | "stylesheet" | "info" | "pict" | "object" | "header" | "footer"
                    | "listtable" | "listoverridetable" | "themedata" | "datastore" | "latentstyles" => {
                        skip_depth = Some(depth)
                    }
                    _ => {}
                }
            }
            b'\r' | b'\n' => i += 1,
            _ => {
                if skip_depth.is_none() {
                    if to_skip > 0 {
                        to_skip -= 1;
                    } else {
                        flush(&mut pending, &mut out, codepage);
                        out.push(c as char);
                    }
                }
                i += 1;
            }
        }
    }
    flush(&mut pending, &mut out, codepage);
    Ok(out)
}

pub(crate) fn codepage_encoding(cp: u16) -> Option<&'static encoding_rs::Encoding> {
    Some(match cp {
        936 => encoding_rs::GBK,
        950 => encoding_rs::BIG5,
        932 => encoding_rs::SHIFT_JIS,
        949 => encoding_rs::EUC_KR,
        1250 => encoding_rs::WINDOWS_1250,
        1251 => encoding_rs::WINDOWS_1251,
        1252 => encoding_rs::WINDOWS_1252,
        65001 => encoding_rs::UTF_8,
        _ => return None,
    })
}
