//! Server-sent events: encoding the events the proxy writes, and splitting a byte
//! stream into whole events so one can be rewritten while the rest pass untouched.
//!
//! Hand-written: `eventsource-stream` parses events into fields, and writing them back
//! would change bytes (comments, field order, `retry`) the proxy must forward as-is.

use bytes::{Bytes, BytesMut};

/// One event as written on the wire (`event:`, `id:`, `data:` lines and the blank line).
pub fn encode(event: Option<&str>, id: Option<&str>, data: &str) -> Bytes {
    let mut out = String::with_capacity(data.len() + 32);
    if let Some(event) = event {
        out.push_str("event: ");
        out.push_str(event);
        out.push('\n');
    }
    if let Some(id) = id {
        out.push_str("id: ");
        out.push_str(id);
        out.push('\n');
    }
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

/// A `retry:` field telling the client how long to wait before reconnecting.
pub fn retry(millis: u64) -> Bytes {
    Bytes::from(format!("retry: {millis}\n\n"))
}

/// Splits a stream of chunks into whole events (each including its terminating blank line).
#[derive(Default)]
pub struct Splitter {
    buffer: BytesMut,
}

impl Splitter {
    /// Adds a chunk; returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Bytes> {
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = event_end(&self.buffer) {
            events.push(self.buffer.split_to(end).freeze());
        }
        events
    }

    /// What is left when the stream ends (an unterminated event).
    pub fn finish(&mut self) -> Option<Bytes> {
        (!self.buffer.is_empty()).then(|| self.buffer.split().freeze())
    }
}

/// The end of the first event: the index after its blank line (`\n\n`, `\r\n\r\n`, `\r\r`).
fn event_end(buffer: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < buffer.len() {
        let line_end = match buffer[i] {
            b'\n' => i + 1,
            b'\r' if buffer.get(i + 1) == Some(&b'\n') => i + 2,
            b'\r' if i + 1 < buffer.len() => i + 1,
            b'\r' => return None,
            _ => {
                i += 1;
                continue;
            }
        };
        match buffer.get(line_end) {
            Some(b'\n') => return Some(line_end + 1),
            Some(b'\r') if buffer.get(line_end + 1) == Some(&b'\n') => return Some(line_end + 2),
            Some(b'\r') if line_end + 1 < buffer.len() => return Some(line_end + 1),
            _ => i = line_end,
        }
    }
    None
}

/// The fields of one event that the proxy reads.
#[derive(Debug, Default, PartialEq)]
pub struct Fields {
    /// `event:`, when given.
    pub event: Option<String>,
    /// `id:`, when given.
    pub id: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Reads the fields of one event.
pub fn fields(event: &[u8]) -> Fields {
    let text = String::from_utf8_lossy(event);
    let mut fields = Fields::default();
    let mut data: Vec<&str> = Vec::new();
    for line in text.lines() {
        let (name, value) = match line.split_once(':') {
            Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match name {
            "event" => fields.event = Some(value.to_owned()),
            "id" => fields.id = Some(value.to_owned()),
            "data" => data.push(value),
            _ => {}
        }
    }
    fields.data = data.join("\n");
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_events_across_chunks_and_line_endings() {
        let mut splitter = Splitter::default();
        assert!(splitter.push(b"event: message\nda").is_empty());
        let events = splitter.push(b"ta: {}\n\nid: 2\r\ndata: x\r\n\r\n: comment\n\ndata: tail");
        assert_eq!(
            events,
            vec![
                Bytes::from_static(b"event: message\ndata: {}\n\n"),
                Bytes::from_static(b"id: 2\r\ndata: x\r\n\r\n"),
                Bytes::from_static(b": comment\n\n"),
            ]
        );
        assert_eq!(splitter.finish(), Some(Bytes::from_static(b"data: tail")));
    }

    #[test]
    fn reads_fields_and_encodes_multiline_data() {
        let encoded = encode(Some("endpoint"), Some("1"), "a\nb");
        assert_eq!(
            &encoded[..],
            b"event: endpoint\nid: 1\ndata: a\ndata: b\n\n"
        );
        let read = fields(&encoded);
        assert_eq!(read.event.as_deref(), Some("endpoint"));
        assert_eq!(read.id.as_deref(), Some("1"));
        assert_eq!(read.data, "a\nb");
    }
}
