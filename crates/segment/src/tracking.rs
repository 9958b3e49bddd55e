//! The Segment-compatible Tracking API: which call a path is, and write-key
//! authentication (HTTP Basic, `X-Write-Key`, or `writeKey` in the body).

use base64::{Engine, engine::general_purpose::STANDARD};
use tributary_adapter::{AdapterError, RawRequest};
use tributary_core::{Secret, config::SourceEnvironment, event::EventKind};

/// One Tracking API endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackingCall {
    /// `/v1/track`, `/v1/t`.
    Track,
    /// `/v1/identify`, `/v1/i`.
    Identify,
    /// `/v1/page`, `/v1/p`.
    Page,
    /// `/v1/screen`, `/v1/s`.
    Screen,
    /// `/v1/group`, `/v1/g`.
    Group,
    /// `/v1/alias`, `/v1/a`.
    Alias,
    /// `/v1/batch`, `/v1/b`.
    Batch,
}

impl TrackingCall {
    /// The call for a path such as `/v1/track`, `/v1/t` or `track`.
    pub fn from_path(path: &str) -> Option<Self> {
        let name = path.trim_end_matches('/');
        let name = name.rsplit('/').next().unwrap_or(name);
        Some(match name {
            "track" | "t" => Self::Track,
            "identify" | "i" => Self::Identify,
            "page" | "p" => Self::Page,
            "screen" | "s" => Self::Screen,
            "group" | "g" => Self::Group,
            "alias" | "a" => Self::Alias,
            "batch" | "b" => Self::Batch,
            _ => return None,
        })
    }

    /// The event kind the path implies (none for a batch).
    pub fn implied_type(self) -> Option<EventKind> {
        Some(match self {
            Self::Track => EventKind::Track,
            Self::Identify => EventKind::Identify,
            Self::Page => EventKind::Page,
            Self::Screen => EventKind::Screen,
            Self::Group => EventKind::Group,
            Self::Alias => EventKind::Alias,
            Self::Batch => return None,
        })
    }
}

/// Checks a Tracking API request's write key against the source
/// environment's: any of HTTP Basic (`key:` or `key`), `X-Write-Key`, or the
/// body's `writeKey` (from [`tributary_adapter::Parsed::body_write_key`])
/// must match, compared in constant time.
pub fn authenticate_write_key(
    req: &RawRequest,
    body_write_key: Option<&Secret>,
    settings: &SourceEnvironment,
) -> Result<(), AdapterError> {
    let Some(expected) = settings.write_key.as_ref().filter(|k| !k.is_empty()) else {
        return Err(unauthorized(
            "write_key_not_configured",
            "this source environment has no write key; the Tracking API is off",
        ));
    };
    let basic = req.header("authorization").and_then(basic_user);
    let presented: Vec<&[u8]> = [
        basic.as_deref(),
        req.header("x-write-key").map(|k| k.trim().as_bytes()),
        body_write_key.map(|k| k.expose().as_bytes()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if presented.is_empty() {
        return Err(unauthorized(
            "write_key_missing",
            "send the write key as HTTP Basic user, X-Write-Key or body `writeKey`",
        ));
    }
    // Every presented key is compared, so timing does not tell which matched.
    let matched = presented
        .iter()
        .fold(false, |ok, key| expected.matches(key) | ok);
    if matched {
        Ok(())
    } else {
        Err(unauthorized(
            "write_key_mismatch",
            "the write key is not valid",
        ))
    }
}

/// The write key a request carries in its headers: the HTTP Basic user, else
/// `X-Write-Key`. For routing a Tracking API call to its source environment;
/// [`authenticate_write_key`] still decides, in constant time.
pub fn header_write_key(req: &RawRequest) -> Option<String> {
    if let Some(user) = req.header("authorization").and_then(basic_user) {
        return String::from_utf8(user).ok();
    }
    req.header("x-write-key").map(|k| k.trim().to_owned())
}

fn unauthorized(code: &'static str, message: &str) -> AdapterError {
    AdapterError::Unauthorized {
        code,
        message: message.to_owned(),
    }
}

/// The user part of `Authorization: Basic base64(user:password)`; a value
/// without a colon is all user (Segment's backward-compatible form).
fn basic_user(header: &str) -> Option<Vec<u8>> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let mut decoded = STANDARD.decode(encoded.trim()).ok()?;
    if let Some(colon) = decoded.iter().position(|b| *b == b':') {
        decoded.truncate(colon);
    }
    (!decoded.is_empty()).then_some(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            TrackingCall::from_path("/v1/track"),
            Some(TrackingCall::Track)
        );
        assert_eq!(TrackingCall::from_path("/v1/b"), Some(TrackingCall::Batch));
        assert_eq!(
            TrackingCall::from_path("identify/"),
            Some(TrackingCall::Identify)
        );
        assert_eq!(TrackingCall::from_path("/v1/merge"), None);
        assert_eq!(TrackingCall::Batch.implied_type(), None);
    }

    #[test]
    fn header_write_key_prefers_basic_then_x_write_key() {
        let t = chrono::DateTime::from_timestamp_millis(0).unwrap();
        let req = |h: &str, v: &str| RawRequest::new("s", "e", Vec::new(), t).with_header(h, v);
        assert_eq!(
            header_write_key(&req("Authorization", "Basic d2tfMTIzOg==")).as_deref(),
            Some("wk_123")
        );
        assert_eq!(
            header_write_key(&req("X-Write-Key", " wk_9 ")).as_deref(),
            Some("wk_9")
        );
        assert_eq!(header_write_key(&req("Authorization", "Bearer x")), None);
    }

    #[test]
    fn basic_user_with_and_without_colon() {
        // base64("wk_123:") and base64("wk_123")
        assert_eq!(
            basic_user("Basic d2tfMTIzOg==").as_deref(),
            Some(&b"wk_123"[..])
        );
        assert_eq!(
            basic_user("basic d2tfMTIz").as_deref(),
            Some(&b"wk_123"[..])
        );
        assert_eq!(basic_user("Bearer d2tfMTIz"), None);
        assert_eq!(basic_user("Basic !!!"), None);
    }
}
