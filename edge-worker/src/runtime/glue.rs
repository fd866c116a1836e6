//! The Workers types at the edge of the plain handlers: the bindings read once per isolate
//! ([`config`]), a [`Reply`] turned into a `Response`, outbound requests built with `web_sys`.

use std::cell::RefCell;
use std::rc::Rc;

use worker::{Env, Headers, Method, Request, Response};

use crate::config::Config;
use crate::http::Reply;

thread_local! {
    // Bindings do not change during an isolate's life: read them once.
    // Shared, not cloned: every request reads it (route, telemetry flush).
    static CONFIG: RefCell<Option<Result<Rc<Config>, String>>> = const { RefCell::new(None) };
}

/// The worker's configuration, read from its bindings on the isolate's first request.
pub(crate) fn config(env: &Env) -> Result<Rc<Config>, String> {
    CONFIG.with(|c| {
        c.borrow_mut()
            .get_or_insert_with(|| {
                Config::from_lookup(|name| env.var(name).ok().map(|v| v.to_string())).map(Rc::new)
            })
            .clone()
    })
}

/// An outbound request, built with `web_sys` directly: `Request::new_with_init` also
/// converts `cf` fetch options (image resizing and the like) that this worker never sets,
/// ~8 KB of the gzipped module. `None` for a URL the runtime refuses.
pub(crate) fn outbound_request(
    url: &str,
    method: Method,
    headers: &Headers,
    body: Option<&str>,
) -> Option<Request> {
    let init = worker::web_sys::RequestInit::new();
    init.set_method(method.as_ref());
    init.set_headers(&headers.0);
    if let Some(body) = body {
        init.set_body(&body.into());
    }
    worker::web_sys::Request::new_with_str_and_init(url, &init)
        .ok()
        .map(Request::from)
}

/// The runtime's response for a [`Reply`].
pub(crate) fn into_response(reply: Reply) -> worker::Result<Response> {
    let headers = Headers::new();
    for (name, value) in &reply.headers {
        headers.append(name, value)?;
    }
    let response = if reply.body.is_empty() {
        Response::empty()?
    } else {
        Response::from_bytes(reply.body)?
    };
    Ok(response.with_status(reply.status).with_headers(headers))
}

/// One request header, `None` when absent (or unreadable).
pub(crate) fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}
