//! Server-sent events, read from a byte stream that may split an event (or a UTF-8 character)
//! anywhere.

#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    /// The `event:` field, when the server names its events (Anthropic, Cohere).
    pub event: Option<String>,
    /// The `data:` lines, joined by newlines.
    pub data: String,
}

#[derive(Default)]
pub struct SseReader {
    buffer: Vec<u8>,
}

impl SseReader {
    /// Bytes buffered and not yet taken as events: what a stream that never ends an event
    /// grows.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        // Line endings may be CRLF; CR carries nothing else in these protocols.
        self.buffer.extend(bytes.iter().copied().filter(|&b| b != b'\r'));
    }

    /// The next complete event, if one is buffered.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            let end = self.buffer.windows(2).position(|w| w == b"\n\n")?;
            let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
            if let Some(event) = parse_block(&String::from_utf8_lossy(&block[..end])) {
                return Some(event);
            }
        }
    }
}

fn parse_block(block: &str) -> Option<SseEvent> {
    let mut event = None;
    let mut data: Vec<&str> = Vec::new();
    for line in block.lines() {
        if line.starts_with(':') {
            continue; // a comment (keep-alive)
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = Some(value.to_string()),
            "data" => data.push(value),
            _ => {}
        }
    }
    if data.is_empty() && event.is_none() {
        return None;
    }
    Some(SseEvent { event, data: data.join("\n") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reassembles_events_split_anywhere() {
        let stream = "event: a\r\ndata: {\"t\":\"知识\"}\r\n\r\n: ping\n\ndata: x\ndata: y\n\ndata: [DONE]";
        let bytes = stream.as_bytes();
        for split in 0..bytes.len() {
            let mut reader = SseReader::default();
            let mut events = Vec::new();
            for part in [&bytes[..split], &bytes[split..]] {
                reader.push(part);
                while let Some(e) = reader.next_event() {
                    events.push(e);
                }
            }
            // The stream closed: a last event may lack its blank line.
            reader.push(b"\n\n");
            events.extend(reader.next_event());
            assert_eq!(
                events,
                vec![
                    SseEvent { event: Some("a".into()), data: "{\"t\":\"知识\"}".into() },
                    SseEvent { event: None, data: "x\ny".into() },
                    SseEvent { event: None, data: "[DONE]".into() },
                ],
                "split at {split}"
            );
        }
    }
}
