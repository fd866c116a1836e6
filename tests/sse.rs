//! A small Server-Sent Events client over a plain `TcpStream`, for the event-stream tests: it
//! speaks HTTP/1.1 (chunked or fixed-length bodies), parses SSE events and the `retry:` hint,
//! and never blocks longer than its poll timeout, so a test can hold a thousand idle streams
//! from one thread or cut one mid-way.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One SSE event (comments and `retry:` lines are not events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `id:`.
    pub id: Option<String>,
    /// `event:` (`message` when absent).
    pub event: String,
    /// `data:` lines, joined with `\n`.
    pub data: String,
}

/// An open stream (or a refused one: see [`Stream::status`]).
#[derive(Debug)]
pub struct Stream {
    socket: TcpStream,
    /// The response status.
    pub status: u16,
    /// Response headers, lowercase names.
    pub headers: Vec<(String, String)>,
    /// The last `retry:` hint seen, in ms.
    pub retry_ms: Option<u64>,
    raw: Vec<u8>,
    body: Vec<u8>,
    chunked: bool,
    remaining: Option<usize>,
    ended: bool,
}

impl Stream {
    /// Opens `GET base+path` with optional `Last-Event-ID` and `Origin`, and reads the head.
    pub fn open(
        base: &str,
        path: &str,
        last_event_id: Option<&str>,
        origin: Option<&str>,
    ) -> io::Result<Stream> {
        let host = base.trim_start_matches("http://").trim_end_matches('/');
        let socket = TcpStream::connect(host)?;
        socket.set_nodelay(true)?;
        let mut request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n"
        );
        if let Some(id) = last_event_id {
            request.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        if let Some(origin) = origin {
            request.push_str(&format!("Origin: {origin}\r\n"));
        }
        request.push_str("\r\n");
        (&socket).write_all(request.as_bytes())?;
        let mut stream = Stream {
            socket,
            status: 0,
            headers: Vec::new(),
            retry_ms: None,
            raw: Vec::new(),
            body: Vec::new(),
            chunked: false,
            remaining: None,
            ended: false,
        };
        stream
            .socket
            .set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.read_head()?;
        Ok(stream)
    }

    /// A response header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == &name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    }

    fn read_head(&mut self) -> io::Result<()> {
        let mut buf = [0u8; 4096];
        let end = loop {
            if let Some(i) = find(&self.raw, b"\r\n\r\n") {
                break i;
            }
            let n = self.socket.read(&mut buf)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "no response head",
                ));
            }
            self.raw.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&self.raw[..end]).into_owned();
        self.raw.drain(..end + 4);
        let mut lines = head.split("\r\n");
        self.status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        for line in lines {
            if let Some((name, value)) = line.split_once(':') {
                self.headers
                    .push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        self.chunked = self
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"));
        self.remaining = self.header("content-length").and_then(|v| v.parse().ok());
        self.decode();
        Ok(())
    }

    /// Moves complete body bytes from `raw` to `body`.
    fn decode(&mut self) {
        if !self.chunked {
            let take = self
                .remaining
                .map_or(self.raw.len(), |r| r.min(self.raw.len()));
            self.body.extend(self.raw.drain(..take));
            if let Some(r) = self.remaining.as_mut() {
                *r -= take;
                if *r == 0 {
                    self.ended = true;
                }
            }
            return;
        }
        loop {
            let Some(line_end) = find(&self.raw, b"\r\n") else {
                return;
            };
            let size_text = String::from_utf8_lossy(&self.raw[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .unwrap_or(0);
            if size == 0 {
                self.ended = true;
                return;
            }
            if self.raw.len() < line_end + 2 + size + 2 {
                return;
            }
            self.body
                .extend_from_slice(&self.raw[line_end + 2..line_end + 2 + size]);
            self.raw.drain(..line_end + 2 + size + 2);
        }
    }

    /// The whole body of a non-streaming answer (a refusal), read to its end.
    pub fn read_to_end(&mut self) -> String {
        while !self.ended {
            if self.fill(Duration::from_secs(5)).is_err() {
                break;
            }
        }
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Reads what arrives within `wait`. `Ok(false)` when the server ended the stream.
    fn fill(&mut self, wait: Duration) -> io::Result<bool> {
        if self.ended {
            return Ok(false);
        }
        self.socket
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        let mut buf = [0u8; 8192];
        match self.socket.read(&mut buf) {
            Ok(0) => {
                self.ended = true;
                Ok(false)
            }
            Ok(n) => {
                self.raw.extend_from_slice(&buf[..n]);
                self.decode();
                Ok(!self.ended)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }

    /// The next event, waiting at most `wait`: `Ok(None)` if none arrived in time,
    /// `Err(UnexpectedEof)` once the stream has ended.
    pub fn next_event(&mut self, wait: Duration) -> io::Result<Option<Event>> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            while let Some(end) = find(&self.body, b"\n\n") {
                let block = String::from_utf8_lossy(&self.body[..end]).into_owned();
                self.body.drain(..end + 2);
                if let Some(event) = self.parse_block(&block) {
                    return Ok(Some(event));
                }
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            if !self.fill(left)? {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "stream ended"));
            }
        }
    }

    fn parse_block(&mut self, block: &str) -> Option<Event> {
        let (mut id, mut event, mut data) = (None, None, Vec::new());
        for line in block.lines() {
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "" => {} // a comment (heartbeat)
                "id" => id = Some(value.to_owned()),
                "event" => event = Some(value.to_owned()),
                "data" => data.push(value.to_owned()),
                "retry" => self.retry_ms = value.parse().ok().or(self.retry_ms),
                _ => {}
            }
        }
        (!data.is_empty()).then(|| Event {
            id,
            event: event.unwrap_or_else(|| "message".into()),
            data: data.join("\n"),
        })
    }

    /// Whether a heartbeat comment (or anything else) arrived within `wait`; consumes it.
    pub fn saw_bytes(&mut self, wait: Duration) -> bool {
        let before = self.body.len() + self.raw.len();
        let _ = self.fill(wait);
        let seen = self.body.len() + self.raw.len() > before;
        while let Some(end) = find(&self.body, b"\n\n") {
            let block = String::from_utf8_lossy(&self.body[..end]).into_owned();
            self.body.drain(..end + 2);
            let _ = self.parse_block(&block);
        }
        seen
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
