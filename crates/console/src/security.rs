//! What guards every console request: the response headers (CSP and
//! friends), the session check, the same-origin check and the CSRF token.

use std::time::Instant;

use axum::{
    body::{Body, to_bytes},
    extract::{Request, State},
    http::{
        HeaderMap, HeaderValue, Method,
        header::{self, CACHE_CONTROL, CONTENT_TYPE, COOKIE, HOST, ORIGIN},
    },
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};

use crate::{BASE_PATH, ConsoleError, ConsoleState, session::Session};

/// The session cookie's name.
pub(crate) const COOKIE_NAME: &str = "tributary_console";

/// The header a script sends the CSRF token in.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

/// The header the page's script marks its background polls with: they do
/// not count as use of the session.
pub(crate) const POLL_HEADER: &str = "x-console-poll";

/// The form field a page sends the CSRF token in.
pub(crate) const CSRF_FIELD: &str = "csrf";

/// The largest form body a console POST may have.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// The policy on every console response: only this origin's files, no inline
/// script or style, no framing, forms post only here.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Adds the security headers to every console response; pages are never
/// cached (they show secrets and live state).
pub(crate) async fn headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The session cookie's value, when the request carries one.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value)
}

/// `Set-Cookie` for a new session.
pub(crate) fn session_set_cookie(id: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE_NAME}={id}; Path={BASE_PATH}; HttpOnly; SameSite=Strict{secure}")
}

/// `Set-Cookie` that deletes the session cookie.
pub(crate) fn session_clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE_NAME}=; Path={BASE_PATH}; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

/// Whether a state-changing request comes from this site. Browsers send
/// `Sec-Fetch-Site` and `Origin` with a form post; a client that sends
/// neither (curl) is judged by its CSRF token alone.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site")
        && !matches!(site.as_bytes(), b"same-origin" | b"none")
    {
        return false;
    }
    match headers.get(ORIGIN) {
        None => true,
        Some(origin) => {
            let host = headers.get(HOST).and_then(|h| h.to_str().ok());
            let origin_host = origin
                .to_str()
                .ok()
                .and_then(|o| o.split_once("://"))
                .map(|(_, rest)| rest.trim_end_matches('/'));
            matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
        }
    }
}

/// Lets a request through only with a live session; otherwise a page is
/// redirected (303) to sign-in. A POST must also come from this site and
/// carry the session's CSRF token (header or form field), or it is refused
/// with 403 before its handler runs.
pub(crate) async fn require_session(
    State(state): State<ConsoleState>,
    request: Request,
    next: Next,
) -> Response {
    let polling = request.headers().contains_key(POLL_HEADER);
    let session = session_cookie(request.headers()).and_then(|id| {
        if polling {
            state.sessions().peek(id, Instant::now())
        } else {
            state.sessions().touch(id, Instant::now())
        }
    });
    let Some(session) = session else {
        return Redirect::to(&format!("{BASE_PATH}/sign-in")).into_response();
    };
    let mut request = if request.method() == Method::GET || request.method() == Method::HEAD {
        request
    } else {
        match check_csrf(request, &session).await {
            Ok(request) => request,
            Err(e) => return e.into_response(),
        }
    };
    request.extensions_mut().insert(session);
    next.run(request).await
}

async fn check_csrf(request: Request, session: &Session) -> Result<Request, ConsoleError> {
    if !same_origin(request.headers()) {
        tracing::warn!(path = %request.uri().path(), "Console request from another site refused.");
        return Err(ConsoleError::Forbidden(
            "this request did not come from the console",
        ));
    }
    if let Some(token) = request.headers().get(CSRF_HEADER) {
        return if session.csrf.matches(token.as_bytes()) {
            Ok(request)
        } else {
            Err(csrf_refused(&request))
        };
    }
    let is_form = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(csrf_refused(&request));
    }
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| ConsoleError::BadRequest("the form is too large".to_owned()))?;
    let presented = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
        .ok()
        .and_then(|fields| {
            fields
                .into_iter()
                .find(|(name, _)| name == CSRF_FIELD)
                .map(|(_, v)| v)
        });
    let request = Request::from_parts(parts, Body::from(bytes));
    match presented {
        Some(token) if session.csrf.matches(token.as_bytes()) => Ok(request),
        _ => Err(csrf_refused(&request)),
    }
}

fn csrf_refused(request: &Request) -> ConsoleError {
    tracing::warn!(path = %request.uri().path(), "Console request without a valid CSRF token refused.");
    ConsoleError::Forbidden("missing or wrong CSRF token; reload the page and try again")
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn same_origin_accepts_this_host_and_refuses_others() {
        assert!(same_origin(&headers(&[])));
        assert!(same_origin(&headers(&[
            ("sec-fetch-site", "same-origin"),
            ("origin", "http://127.0.0.1:8080"),
            ("host", "127.0.0.1:8080"),
        ])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!same_origin(&headers(&[
            ("origin", "http://127.0.0.1:8081"),
            ("host", "127.0.0.1:8080"),
        ])));
        assert!(!same_origin(&headers(&[("origin", "null"), ("host", "a")])));
        assert!(!same_origin(&headers(&[("origin", "http://a")])));
    }

    proptest! {
        #[test]
        fn the_session_cookie_is_found_among_any_others(
            before in proptest::collection::vec(("[a-z_]{1,12}", "[A-Za-z0-9]{0,16}"), 0..4),
            after in proptest::collection::vec(("[a-z_]{1,12}", "[A-Za-z0-9]{0,16}"), 0..4),
            id in "[0-9a-f]{64}",
        ) {
            let others = |pairs: &[(String, String)]| pairs
                .iter()
                .filter(|(n, _)| n != COOKIE_NAME)
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>();
            let mut parts = others(&before);
            parts.push(format!("{COOKIE_NAME}={id}"));
            parts.extend(others(&after));
            let map = headers(&[("cookie", &parts.join("; "))]);
            prop_assert_eq!(session_cookie(&map), Some(id.as_str()));
        }

        #[test]
        fn cookie_and_origin_checks_never_panic(
            cookie in "[ -~]{0,80}",
            origin in "[ -~]{0,40}",
            host in "[ -~]{0,40}",
            site in "[ -~]{0,20}",
        ) {
            let mut map = HeaderMap::new();
            for (name, value) in [("cookie", &cookie), ("origin", &origin), ("host", &host), ("sec-fetch-site", &site)] {
                if let Ok(v) = HeaderValue::from_str(value) {
                    map.insert(name, v);
                }
            }
            let _ = session_cookie(&map);
            let _ = same_origin(&map);
        }
    }
}
