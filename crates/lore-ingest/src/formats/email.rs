//! Email: headers that matter and the readable body.

use lore_core::error::Result;
use serde_json::{Value, json};

use super::*;

/// An email: subject as title, the headers people care about, the text body (or the HTML body
/// as text), and attachment names.
pub fn email(bytes: &[u8], html_to_text: impl Fn(&str) -> (Option<String>, String)) -> Result<(Builder, Value)> {
    let message =
        mail_parser::MessageParser::default().parse(bytes).ok_or_else(|| corrupt("email", "no message found"))?;
    let mut b = Builder { title: message.subject().map(str::to_string), ..Default::default() };
    let addresses = |a: Option<&mail_parser::Address<'_>>| {
        a.map(|a| {
            a.iter()
                .map(|x| match (x.name(), x.address()) {
                    (Some(n), Some(e)) => format!("{n} <{e}>"),
                    (None, Some(e)) => e.to_string(),
                    (Some(n), None) => n.to_string(),
                    (None, None) => String::new(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
    };
    let from = addresses(message.from());
    let to = addresses(message.to());
    let date = message.date().map(|d| d.to_rfc3339());
    let mut header = Vec::new();
    if let Some(s) = message.subject() {
        header.push(format!("Subject: {s}"));
    }
    if let Some(f) = &from {
        header.push(format!("From: {f}"));
    }
    if let Some(t) = &to {
        header.push(format!("To: {t}"));
    }
    if let Some(d) = &date {
        header.push(format!("Date: {d}"));
    }
    b.paragraph(&header.join("\n"));
    let body = if message.text_body_count() > 0 {
        (0..message.text_body_count())
            .filter_map(|i| message.body_text(i))
            .map(|t| t.into_owned())
            .collect::<Vec<_>>()
            .join("\n\n")
    } else {
        (0..message.html_body_count())
            .filter_map(|i| message.body_html(i))
            .map(|h| html_to_text(&h).1)
            .collect::<Vec<_>>()
            .join("\n\n")
    };
    for p in body.replace("\r\n", "\n").split("\n\n") {
        b.paragraph(p);
    }
    use mail_parser::MimeHeaders;
    let attachments: Vec<String> =
        message.attachments().filter_map(|a| a.attachment_name().map(str::to_string)).collect();
    if !attachments.is_empty() {
        b.paragraph(&format!("Attachments: {}", attachments.join(", ")));
    }
    let meta = json!({"from": from, "to": to, "date": date, "attachments": attachments});
    Ok((b, meta))
}
