//! Just the HTTP/1.1 po-serve needs, as pure functions: find and parse a
//! request head, write a response head. No bodies are read (po-serve only
//! answers GET and HEAD; a request that comes with a body is answered and
//! its connection closed).
//!
//! The head is bounded ([`MAX_HEAD`] bytes, [`MAX_HEADERS`] fields) and
//! parsed strictly: a request line of three parts, origin-form targets of
//! visible ASCII, `name: value` fields without folding.

use std::fmt::Write as _;

/// The most bytes of a request head (request line and fields).
pub const MAX_HEAD: usize = 16 * 1024;
/// The most header fields of one request.
pub const MAX_HEADERS: usize = 64;

/// A parsed request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The request target as sent: `/o/1234?token=…`.
    pub target: String,
    /// `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub minor: u8,
    /// Names as sent; look them up with [`Request::header`].
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The first field called `name` (case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn connection_has(&self, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether the client wants the connection kept for another request.
    pub fn keep_alive(&self) -> bool {
        if self.connection_has("close") {
            false
        } else if self.minor == 0 {
            self.connection_has("keep-alive")
        } else {
            true
        }
    }

    /// Whether a body follows the head (which po-serve does not read).
    pub fn has_body(&self) -> bool {
        self.header("transfer-encoding").is_some()
            || self
                .header("content-length")
                .is_some_and(|v| v.trim() != "0")
    }
}

/// Why a head cannot be parsed, and the status to answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// More than [`MAX_HEAD`] bytes or [`MAX_HEADERS`] fields: 431.
    TooLarge,
    /// Not HTTP/1.0 or HTTP/1.1: 505.
    Version,
    /// Anything else: 400.
    Bad(&'static str),
}

impl Malformed {
    pub fn status(self) -> u16 {
        match self {
            Malformed::TooLarge => 431,
            Malformed::Version => 505,
            Malformed::Bad(_) => 400,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Malformed::TooLarge => "the request head is too large",
            Malformed::Version => "po-serve speaks HTTP/1.1 and HTTP/1.0",
            Malformed::Bad(why) => why,
        }
    }
}

/// Empty lines a client may send before a request line (RFC 9112 §2.2).
pub fn leading_blank_lines(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count()
}

/// The length of the head at the start of `buf` (through the empty line
/// that ends it), looking for that line from byte `from` on; `None` while
/// it is incomplete.
pub fn head_len(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3).min(buf.len());
    let mut i = start;
    while let Some(off) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + off;
        // "\n\n" or "\n\r\n" ends the head.
        if nl + 1 < buf.len() && buf[nl + 1] == b'\n' {
            return Some(nl + 2);
        }
        if nl + 2 < buf.len() && buf[nl + 1] == b'\r' && buf[nl + 2] == b'\n' {
            return Some(nl + 3);
        }
        i = nl + 1;
    }
    None
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
}

/// Parse a complete head (as [`head_len`] delimits it, leading blank lines
/// already skipped).
pub fn parse_head(head: &[u8]) -> Result<Request, Malformed> {
    if head.len() > MAX_HEAD {
        return Err(Malformed::TooLarge);
    }
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Malformed::Bad(
            "the request line is not `METHOD /path HTTP/1.1`",
        ));
    };
    if !is_token(method) || method.len() > 32 {
        return Err(Malformed::Bad("the request method is not a token"));
    }
    if !target.starts_with(b"/") || !target.iter().all(|b| (0x21..0x7f).contains(b)) {
        return Err(Malformed::Bad(
            "the request target is not a path of visible ASCII",
        ));
    }
    let minor = match version {
        b"HTTP/1.1" => 1,
        b"HTTP/1.0" => 0,
        v if v.len() == 8
            && v.starts_with(b"HTTP/")
            && v[5].is_ascii_digit()
            && v[6] == b'.'
            && v[7].is_ascii_digit() =>
        {
            return Err(Malformed::Version);
        }
        _ => return Err(Malformed::Bad("the protocol is not HTTP/1.x")),
    };
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(Malformed::TooLarge);
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(Malformed::Bad("a header field has no colon"));
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if !is_token(name) {
            return Err(Malformed::Bad(
                "a header field name is not a token (or the field is folded)",
            ));
        }
        if value
            .iter()
            .any(|&b| b == b'\r' || b == 0 || (b < 0x20 && b != b'\t') || b == 0x7f)
        {
            return Err(Malformed::Bad("a header field value holds a control byte"));
        }
        let value = String::from_utf8_lossy(value);
        headers.push((
            String::from_utf8_lossy(name).into_owned(),
            value.trim_matches([' ', '\t']).to_string(),
        ));
    }
    Ok(Request {
        method: String::from_utf8_lossy(method).into_owned(),
        target: String::from_utf8_lossy(target).into_owned(),
        minor,
        headers,
    })
}

/// The reason phrase of the statuses po-serve sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// A response head: status line, `headers`, `Content-Length: len` and
/// `Connection: keep-alive` or `close`.
pub fn response_head(
    status: u16,
    headers: &[(&str, &str)],
    content_length: usize,
    keep_alive: bool,
) -> String {
    let mut h = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in headers {
        let _ = write!(h, "{k}: {v}\r\n");
    }
    let _ = write!(
        h,
        "Content-Length: {content_length}\r\nConnection: {}\r\n\r\n",
        if keep_alive { "keep-alive" } else { "close" }
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Request, Malformed> {
        let b = s.as_bytes();
        let skip = leading_blank_lines(b);
        let n = head_len(&b[skip..], 0).expect("a complete head");
        parse_head(&b[skip..skip + n])
    }

    #[test]
    fn a_request_head_parses_with_its_fields() {
        let r =
            parse("\r\nGET /o/1?token=a%20b HTTP/1.1\r\nHost: localhost\r\nX-A:  b \t\r\n\r\nnext")
                .unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.target, "/o/1?token=a%20b");
        assert_eq!(r.minor, 1);
        assert_eq!(r.header("host"), Some("localhost"));
        assert_eq!(r.header("x-a"), Some("b"));
        assert!(r.keep_alive() && !r.has_body());
        let old = parse("GET / HTTP/1.0\n\n").unwrap();
        assert!(!old.keep_alive());
        let kept = parse("GET / HTTP/1.0\nConnection: Keep-Alive\n\n").unwrap();
        assert!(kept.keep_alive());
        let closed = parse("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n").unwrap();
        assert!(!closed.keep_alive());
        let body = parse("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n").unwrap();
        assert!(body.has_body());
    }

    #[test]
    fn the_end_of_a_head_is_found_across_reads() {
        let full = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
        let n = head_len(full, 0).unwrap();
        assert_eq!(&full[..n], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        // Fed a byte at a time, scanning only from where the last scan ended.
        let mut seen = None;
        for end in 1..=full.len() {
            if let Some(n) = head_len(&full[..end], end - 1) {
                seen = Some(n);
                break;
            }
        }
        assert_eq!(seen, Some(n));
        assert_eq!(head_len(b"GET / HTTP/1.1\r\nHost: x\r\n", 0), None);
        assert_eq!(head_len(b"GET / HTTP/1.1\n\n", 0), Some(16));
    }

    #[test]
    fn malformed_heads_are_refused_with_their_status() {
        for (raw, status) in [
            ("GET /\r\n\r\n", 400),
            ("GET  / HTTP/1.1\r\n\r\n", 400),
            ("GET http://x/ HTTP/1.1\r\n\r\n", 400),
            ("GET /a\x01 HTTP/1.1\r\n\r\n", 400),
            ("G(T / HTTP/1.1\r\n\r\n", 400),
            ("GET / HTTP/2.0\r\n\r\n", 505),
            ("GET / FTP/1.0\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nBad Name: b\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nA: b\x00c\r\n\r\n", 400),
        ] {
            assert_eq!(
                parse(raw).map_err(Malformed::status),
                Err(status),
                "{raw:?}"
            );
        }
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "A: b\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(parse(&many), Err(Malformed::TooLarge));
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(parse(&long), Err(Malformed::TooLarge));
    }

    #[test]
    fn a_response_head_has_its_length_and_connection() {
        assert_eq!(
            response_head(404, &[("Content-Type", "text/plain")], 3, false),
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
        );
    }
}
