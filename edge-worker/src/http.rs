//! A plain response type the handlers return (converted to a Workers `Response` only at the
//! edge of `lib.rs`, so handlers test natively), and the CORS rules.

use crate::error::ApiError;

/// A response: status, headers, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Header name/value pairs, in order.
    pub headers: Vec<(&'static str, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// A JSON reply.
    pub fn json(status: u16, body: Vec<u8>) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type", "application/json".into())],
            body,
        }
    }

    /// An error reply with the OFREP error body; never cached.
    pub fn error(error: ApiError, key: Option<&str>) -> Reply {
        Reply::json(error.status(), error.body(key)).with_header("Cache-Control", "no-store")
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// The first value of a header (case-insensitive), for tests and post-processing.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `scheme://host[:port]` of an absolute URL (the request's own origin, for CORS).
pub fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after_scheme + i);
    &url[..end]
}

/// What the CORS allowlist says about a request's `Origin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsDecision {
    /// No `Origin` header, or the worker's own origin: not a cross-origin call.
    SameOrigin,
    /// Allowed: echo this origin back.
    Allowed(String),
    /// Not in the allowlist.
    Refused,
}

/// Decides on a request's `Origin` against the allowlist. `own_origin` is the request URL's
/// `scheme://host[:port]` (browsers send `Origin` on same-origin POSTs too).
pub fn cors_decision(origin: Option<&str>, own_origin: &str, allowlist: &[String]) -> CorsDecision {
    match origin {
        None => CorsDecision::SameOrigin,
        Some(o) if o == own_origin => CorsDecision::SameOrigin,
        Some(o) if allowlist.iter().any(|a| a == o) => CorsDecision::Allowed(o.to_owned()),
        Some(_) => CorsDecision::Refused,
    }
}

/// Adds the CORS response headers for an allowed cross-origin call.
pub fn with_cors(reply: Reply, decision: &CorsDecision) -> Reply {
    match decision {
        CorsDecision::Allowed(origin) => reply
            .with_header("Access-Control-Allow-Origin", origin.clone())
            .with_header("Access-Control-Allow-Credentials", "true")
            .with_header("Access-Control-Expose-Headers", "ETag, Server-Timing"),
        _ => reply,
    }
}

/// The answer to a CORS preflight (`OPTIONS`) on an OFREP path.
pub fn preflight(decision: &CorsDecision) -> Reply {
    match decision {
        CorsDecision::Refused => {
            Reply::error(ApiError::OriginNotAllowed, None).with_header("Vary", "Origin")
        }
        _ => with_cors(
            Reply {
                status: 204,
                headers: Vec::new(),
                body: Vec::new(),
            }
            .with_header("Access-Control-Allow-Methods", "POST, OPTIONS")
            .with_header(
                "Access-Control-Allow-Headers",
                "Content-Type, Authorization, If-None-Match",
            )
            .with_header("Access-Control-Max-Age", "600")
            .with_header("Vary", "Origin"),
            decision,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_is_scheme_host_and_port() {
        assert_eq!(
            origin_of("https://flags.example/ofrep/v1"),
            "https://flags.example"
        );
        assert_eq!(origin_of("http://127.0.0.1:8787/"), "http://127.0.0.1:8787");
        assert_eq!(
            origin_of("http://127.0.0.1:8787?x"),
            "http://127.0.0.1:8787"
        );
        assert_eq!(origin_of("https://a.example"), "https://a.example");
    }

    #[test]
    fn cors_allowlist_is_exact() {
        let list = vec!["https://dash.example".to_owned()];
        let own = "https://flags.example";
        assert_eq!(cors_decision(None, own, &list), CorsDecision::SameOrigin);
        assert_eq!(
            cors_decision(Some(own), own, &list),
            CorsDecision::SameOrigin
        );
        assert_eq!(
            cors_decision(Some("https://dash.example"), own, &list),
            CorsDecision::Allowed("https://dash.example".into())
        );
        for refused in [
            "https://dash.example.evil",
            "http://dash.example",
            "null",
            "https://evil",
        ] {
            assert_eq!(
                cors_decision(Some(refused), own, &list),
                CorsDecision::Refused,
                "{refused}"
            );
        }
    }

    #[test]
    fn preflight_allows_the_ofrep_headers_only_for_allowed_origins() {
        let ok = preflight(&CorsDecision::Allowed("https://dash.example".into()));
        assert_eq!(ok.status, 204);
        assert_eq!(
            ok.header("access-control-allow-origin"),
            Some("https://dash.example")
        );
        assert!(
            ok.header("Access-Control-Allow-Headers")
                .unwrap()
                .contains("If-None-Match")
        );
        let refused = preflight(&CorsDecision::Refused);
        assert_eq!(refused.status, 403);
        assert_eq!(refused.header("Access-Control-Allow-Origin"), None);
    }
}
