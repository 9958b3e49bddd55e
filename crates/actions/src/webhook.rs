//! The `webhook` sink: each action is POSTed as JSON to the operator's URL,
//! signed with Standard Webhooks headers so the receiver can verify it and
//! deduplicate retries by `webhook-id` (the action id).

use std::num::NonZeroU32;

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::Utc;
use hmac::{Hmac, Mac};
use reqwest::Url;
use serde_json::json;
use sha2::Sha256;
use tributary_core::{ActionType, Secret};

use crate::{
    ActionRequest, ActionsError, BoxFuture, Outcome, Sink,
    http::{client, send},
};

/// Executes actions by POSTing them to an HTTP endpoint.
pub struct WebhookSink {
    client: reqwest::Client,
    url: Url,
    key: Vec<u8>,
}

/// `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length; the error arm cannot happen.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

impl WebhookSink {
    /// A sink posting to `url`, signing with `secret`.
    pub fn new(url: &str, secret: &Secret) -> Result<Self, ActionsError> {
        let parsed = Url::parse(url).map_err(|e| ActionsError::InvalidUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ActionsError::InvalidUrl {
                url: url.to_owned(),
                reason: "the scheme must be http or https".to_owned(),
            });
        }
        Ok(Self {
            client: client(),
            url: parsed,
            key: tributary_adapter::verify::standard_webhooks_key(secret),
        })
    }

    /// The exact body posted for `request`.
    pub fn body(request: &ActionRequest) -> Vec<u8> {
        let body = json!({
            "type": format!("action.{}", request.payload.action_type()),
            "timestamp": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": request,
        });
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

impl Sink for WebhookSink {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn rate_limit(&self, _action: ActionType) -> Option<NonZeroU32> {
        None
    }

    fn execute<'a>(&'a self, request: &'a ActionRequest) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let body = Self::body(request);
            let timestamp = Utc::now().timestamp();
            let signature = sign(&self.key, &request.action_id, timestamp, &body);
            let builder = self
                .client
                .post(self.url.clone())
                .header("content-type", "application/json")
                .header("webhook-id", &request.action_id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature)
                .body(body);
            send(builder).await
        })
    }
}
