//! The HTTP client for `POST {host}/v1/batch`.

use std::{io::Write, time::Duration};

use chrono::Utc;
use flate2::{Compression, write::GzEncoder};
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use tributary_core::Secret;

use crate::{
    OutboundError,
    config::DeliverySettings,
    retry::{StatusClass, classify_status, parse_retry_after},
};

/// How much of an error body is kept for logs and dead letters.
const DETAIL_BYTES: usize = 512;

/// The result of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// 2xx.
    Delivered,
    /// A transient failure; `status` is `None` for network errors.
    Retry {
        /// The status, if there was a response.
        status: Option<u16>,
        /// What happened.
        detail: String,
    },
    /// 429: the write key should pause.
    RateLimited {
        /// How long Segment asked for, if it said.
        retry_after: Option<Duration>,
    },
    /// 400/413: split the batch.
    Split {
        /// The status.
        status: u16,
        /// Segment's answer (truncated).
        detail: String,
    },
    /// Permanent failure.
    Reject {
        /// The status.
        status: u16,
        /// Segment's answer (truncated).
        detail: String,
    },
}

/// Sends encoded batch bodies to one Segment-compatible host.
#[derive(Clone, Debug)]
pub struct SegmentClient {
    http: reqwest::Client,
    url: String,
    gzip: bool,
}

impl SegmentClient {
    /// A client for `settings.host`, with its timeouts.
    pub fn new(settings: &DeliverySettings) -> Result<Self, OutboundError> {
        let http = reqwest::Client::builder()
            .timeout(settings.request_timeout())
            .connect_timeout(settings.request_timeout().min(Duration::from_secs(10)))
            // A redirect would turn the POST into a GET and lose the body.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tributary/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OutboundError::Client(e.to_string()))?;
        Ok(Self {
            http,
            url: format!("{}/v1/batch", settings.host.trim_end_matches('/')),
            gzip: settings.gzip,
        })
    }

    /// The full batch URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends one body (as made by [`crate::batch::encode_batch`]) with the
    /// write key as HTTP Basic user name and an empty password.
    pub async fn send(&self, write_key: &Secret, body: Vec<u8>) -> SendOutcome {
        let mut request = self
            .http
            .post(&self.url)
            .basic_auth(write_key.expose(), Some(""))
            .header(CONTENT_TYPE, "application/json");
        let body = if self.gzip {
            let mut encoder =
                GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
            match encoder.write_all(&body).and_then(|()| encoder.finish()) {
                Ok(compressed) => {
                    request = request.header(CONTENT_ENCODING, "gzip");
                    compressed
                }
                // Compressing into memory cannot really fail; send it plain.
                Err(_) => body,
            }
        } else {
            body
        };
        let response = match request.body(body).send().await {
            Ok(r) => r,
            Err(e) => {
                return SendOutcome::Retry {
                    status: None,
                    detail: describe_transport_error(&e),
                };
            }
        };
        let status = response.status().as_u16();
        let class = classify_status(status);
        if class == StatusClass::Delivered {
            return SendOutcome::Delivered;
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .or_else(|| response.headers().get("x-ratelimit-reset"))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, Utc::now()));
        let detail = match response.bytes().await {
            Ok(b) => String::from_utf8_lossy(&b[..b.len().min(DETAIL_BYTES)]).into_owned(),
            Err(e) => format!("(body unreadable: {e})"),
        };
        match class {
            StatusClass::Delivered => SendOutcome::Delivered,
            StatusClass::RateLimited => SendOutcome::RateLimited { retry_after },
            StatusClass::Retry => SendOutcome::Retry {
                status: Some(status),
                detail,
            },
            StatusClass::Split => SendOutcome::Split { status, detail },
            StatusClass::Reject => SendOutcome::Reject { status, detail },
        }
    }
}

fn describe_transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        let text = e.to_string();
        // Without the URL: it is ours and adds nothing.
        match e.url() {
            Some(url) => text.replace(url.as_str(), "<host>"),
            None => text,
        }
    }
}
