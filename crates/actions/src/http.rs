//! Sending one HTTP request for an action and turning whatever happens into an [`Outcome`].

use std::time::Duration;

use chrono::Utc;
use reqwest::{RequestBuilder, header::RETRY_AFTER};

use crate::{Outcome, outcome};

/// Connect and whole-request timeouts for sink clients.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// See [`CONNECT_TIMEOUT`].
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client with the timeouts every sink uses.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        // A redirect would re-send a signed or authenticated body elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("tributary/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Sends and classifies. Network errors and timeouts are retried.
pub(crate) async fn send(request: RequestBuilder) -> Outcome {
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            return Outcome::Retry {
                status: None,
                // Without the URL: it may carry credentials in its query.
                error: format!("request failed: {}", e.without_url()),
                retry_after: None,
            };
        }
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| outcome::parse_retry_after(v, Utc::now()));
    let body = read_bounded(response).await;
    outcome::classify(status, retry_after, &body)
}

async fn read_bounded(mut response: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        buf.extend_from_slice(&chunk);
        if buf.len() > outcome::SUMMARY_LIMIT * 2 {
            break;
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}
