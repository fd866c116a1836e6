//! What the test harnesses for real processes share (`worker::Worker` in workerd,
//! `serve::Service`): the HTTP [`Reply`] and how it is read off `ureq`, and waiting for a
//! process's readiness line while its output keeps draining (a full pipe would stall it).

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// One HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Body text.
    pub body: String,
}

impl Reply {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// Sends `request` with an optional body; a non-2xx status is a [`Reply`] too, only a
/// transport failure is an error.
#[allow(clippy::result_large_err)] // ureq's own error type, returned as the tests get it.
pub fn send(request: ureq::Request, body: Option<&[u8]>) -> Result<Reply, ureq::Error> {
    let result = match body {
        Some(bytes) => request.send_bytes(bytes),
        None => request.call(),
    };
    let response = match result {
        Ok(response) | Err(ureq::Error::Status(_, response)) => response,
        Err(e) => return Err(e),
    };
    let status = response.status();
    let headers = response
        .headers_names()
        .into_iter()
        .filter_map(|n| {
            response
                .header(&n)
                .map(|v| (n.to_ascii_lowercase(), v.to_owned()))
        })
        .collect();
    let body = response.into_string().unwrap_or_default();
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// Reads `output` line by line on a thread for the process's whole life, handing each line to
/// `each`; the first `Some` that `ready` returns is this function's answer, `None` when the
/// output ends or `timeout` passes first.
pub fn wait_for_ready_line<R: Read + Send + 'static>(
    output: R,
    timeout: Duration,
    ready: impl Fn(&str) -> Option<String> + Send + 'static,
    mut each: impl FnMut(String) + Send + 'static,
) -> Option<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            if let Some(found) = ready(&line) {
                let _ = tx.send(found);
            }
            each(line);
        }
    });
    rx.recv_timeout(timeout).ok()
}
