//! Who may look: loopback by default; anything else only with a token,
//! checked on every request (`Authorization: Bearer …` or `?token=…`).
//!
//! Without a token the server answers only requests addressed to a loopback
//! name (`Host: localhost`, `127.0.0.1`, `[::1]`), so a web page elsewhere
//! cannot read the board through a DNS name rebound to 127.0.0.1.

use std::net::{IpAddr, SocketAddr};

use crate::error::{Error, Result};

/// Tokens shorter than this are refused: they can be guessed.
pub const MIN_TOKEN: usize = 16;

/// The token to require, if any; refuse to serve a non-loopback address
/// without one.
pub fn check_config(listen: &SocketAddr, token: Option<&str>) -> Result<Option<String>> {
    let token = token.filter(|t| !t.is_empty());
    if let Some(t) = token {
        if t.chars().count() < MIN_TOKEN || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::usage(format!(
                "use the given token: it needs at least {MIN_TOKEN} characters and no spaces; \
                 make one with `openssl rand -hex 16`"
            )));
        }
    } else if !listen.ip().is_loopback() {
        return Err(Error::usage(format!(
            "listen on {listen}: it is not a loopback address, so anyone who can reach it would \
             see every task; pass --token (or set PO_SERVE_TOKEN) to require one, or listen on \
             127.0.0.1"
        )));
    }
    Ok(token.map(str::to_string))
}

/// Equal contents, in time that does not depend on where they differ.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// How a request proved it may look.
#[derive(Debug, PartialEq, Eq)]
pub enum Access {
    /// No token is required.
    Open,
    /// A bearer token in the `Authorization` header.
    Header,
    /// A `?token=` in the URL: links on the page must carry it on.
    Query,
    /// No token, or a wrong one.
    Denied,
}

/// Check a request's token: `authorization` is its `Authorization` header,
/// `query_token` the decoded `token` parameter of its URL.
pub fn access(
    required: Option<&str>,
    authorization: Option<&str>,
    query_token: Option<&str>,
) -> Access {
    let Some(want) = required else {
        return Access::Open;
    };
    if let Some(h) = authorization
        && let Some((scheme, got)) = h.trim().split_once(' ')
        && scheme.eq_ignore_ascii_case("bearer")
        && same(got.trim().as_bytes(), want.as_bytes())
    {
        return Access::Header;
    }
    if let Some(got) = query_token
        && same(got.as_bytes(), want.as_bytes())
    {
        return Access::Query;
    }
    Access::Denied
}

/// Whether a `Host` header names this machine's loopback.
pub fn loopback_host(host: &str) -> bool {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split_once(']').map_or(rest, |(h, _)| h)
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Decode `%XX` escapes and `+` (a query's space); `None` for a malformed
/// escape or a result that is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Encode everything but unreserved characters, for a query value.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The value of `name` in a query string (`a=1&token=x`), decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| percent_decode(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_address_needs_a_long_token() {
        let lan: SocketAddr = "0.0.0.0:8731".parse().unwrap();
        let lo: SocketAddr = "127.0.0.1:8731".parse().unwrap();
        let v6: SocketAddr = "[::1]:8731".parse().unwrap();
        assert!(check_config(&lan, None).is_err());
        assert!(check_config(&lan, Some("")).is_err());
        assert!(check_config(&lan, Some("short")).is_err());
        assert!(check_config(&lan, Some("with a space in it ok")).is_err());
        assert_eq!(
            check_config(&lan, Some("0123456789abcdef"))
                .unwrap()
                .as_deref(),
            Some("0123456789abcdef")
        );
        assert_eq!(check_config(&lo, None).unwrap(), None);
        assert_eq!(check_config(&v6, None).unwrap(), None);
    }

    #[test]
    fn tokens_come_by_header_or_query_and_must_match_exactly() {
        let t = Some("0123456789abcdef");
        assert_eq!(access(None, None, None), Access::Open);
        assert_eq!(access(t, None, None), Access::Denied);
        assert_eq!(
            access(t, Some("Bearer 0123456789abcdef"), None),
            Access::Header
        );
        assert_eq!(
            access(t, Some("bearer 0123456789abcdef"), None),
            Access::Header
        );
        assert_eq!(
            access(t, Some("Basic 0123456789abcdef"), None),
            Access::Denied
        );
        assert_eq!(
            access(t, Some("Bearer 0123456789abcdeF"), None),
            Access::Denied
        );
        assert_eq!(access(t, None, Some("0123456789abcdef")), Access::Query);
        assert_eq!(access(t, None, Some("0123456789abcde")), Access::Denied);
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"abc", b"ab"));
    }

    #[test]
    fn only_loopback_names_are_loopback_hosts() {
        for h in [
            "localhost:8731",
            "127.0.0.1:1",
            "127.1.2.3",
            "[::1]:80",
            "LOCALHOST",
        ] {
            assert!(loopback_host(h), "{h}");
        }
        for h in [
            "evil.example:8731",
            "10.0.0.1:8731",
            "localhost.evil.example",
            "[::2]:1",
            "",
        ] {
            assert!(!loopback_host(h), "{h}");
        }
    }

    #[test]
    fn queries_decode_and_encode() {
        assert_eq!(
            query_param("a=1&token=x%2By+z", "token").as_deref(),
            Some("x+y z")
        );
        assert_eq!(query_param("token=%zz", "token"), None);
        assert_eq!(query_param("tokens=1", "token"), None);
        assert_eq!(percent_encode("a b/é"), "a%20b%2F%C3%A9");
        assert_eq!(
            percent_decode(&percent_encode("x&y=1 %")).as_deref(),
            Some("x&y=1 %")
        );
    }
}
