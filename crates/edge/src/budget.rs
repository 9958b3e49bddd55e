//! The budget of request-body bytes being read at once, and the body-read
//! timeout.

use std::{pin::Pin, sync::Arc, time::Duration};

use axum::{
    body::{Body, HttpBody},
    http::{HeaderMap, header::CONTENT_LENGTH},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::BodyError;

/// A process-wide budget of request-body bytes being read or held at once.
///
/// Every body reading a handler does goes through [`BodyBudget::reserve`]:
/// with a `Content-Length` it reserves that many bytes, without one the
/// route's whole limit. The reservation lasts as long as the handler keeps
/// the [`Reservation`], so the bytes count until the request is done with
/// them. A reservation the budget cannot cover is refused at once (the
/// handler answers 503 with `Retry-After`) rather than queued, so a flood of
/// large bodies costs sockets, not memory.
#[derive(Clone, Debug)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
    total: usize,
    read_timeout: Duration,
}

/// Bytes reserved for one request body; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
    limit: usize,
    declared: Option<usize>,
    read_timeout: Duration,
}

impl BodyBudget {
    /// A budget of `total_bytes`, reading each body within `read_timeout`.
    pub fn new(total_bytes: usize, read_timeout: Duration) -> Self {
        let total = total_bytes.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            bytes: Arc::new(Semaphore::new(total)),
            total,
            read_timeout,
        }
    }

    /// The budget in bytes.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes not reserved right now.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }

    /// Reserves the bytes a body of at most `limit` bytes needs: its
    /// `Content-Length`, else `limit` (never more than the whole budget, so
    /// one largest body always fits an idle server). A declared length over
    /// `limit` is refused before anything is read.
    pub fn reserve(&self, headers: &HeaderMap, limit: usize) -> Result<Reservation, BodyError> {
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(BodyError::TooLarge { limit });
        }
        let wanted = declared.unwrap_or(limit).min(self.total);
        let wanted = u32::try_from(wanted).unwrap_or(u32::MAX);
        let permit = self
            .bytes
            .clone()
            .try_acquire_many_owned(wanted)
            .map_err(|_| {
                metrics::counter!("tributary_http_body_budget_refused_total").increment(1);
                BodyError::OverBudget
            })?;
        Ok(Reservation {
            _permit: permit,
            limit,
            declared,
            read_timeout: self.read_timeout,
        })
    }
}

impl Reservation {
    /// Reads the whole body within the limit and the body-read timeout.
    pub async fn read(&self, body: Body) -> Result<Vec<u8>, BodyError> {
        let after = self.read_timeout;
        tokio::time::timeout(after, self.collect(body))
            .await
            .map_err(|_| BodyError::TimedOut { after })?
    }

    async fn collect(&self, mut body: Body) -> Result<Vec<u8>, BodyError> {
        let mut out = Vec::with_capacity(self.declared.unwrap_or(0).min(self.limit));
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            let frame = frame.map_err(|e| BodyError::Unreadable(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                if out.len() + data.len() > self.limit {
                    return Err(BodyError::TooLarge { limit: self.limit });
                }
                out.extend_from_slice(&data);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with_length(n: usize) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_LENGTH, HeaderValue::from(n));
        h
    }

    #[tokio::test]
    async fn reservations_beyond_the_budget_are_refused_until_released() {
        let budget = BodyBudget::new(1_000, Duration::from_secs(5));
        let first = budget.reserve(&with_length(600), 1_000).unwrap();
        assert_eq!(budget.available(), 400);
        assert!(matches!(
            budget.reserve(&with_length(600), 1_000),
            Err(BodyError::OverBudget)
        ));
        // Without a length the whole limit is reserved.
        assert!(matches!(
            budget.reserve(&HeaderMap::new(), 500),
            Err(BodyError::OverBudget)
        ));
        drop(first);
        assert_eq!(budget.available(), 1_000);
        let whole = budget.reserve(&HeaderMap::new(), 5_000).unwrap();
        assert_eq!(budget.available(), 0, "capped at the budget, never more");
        drop(whole);
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_before_reading() {
        let budget = BodyBudget::new(10_000, Duration::from_secs(5));
        let err = budget.reserve(&with_length(101), 100).unwrap_err();
        assert!(matches!(err, BodyError::TooLarge { limit: 100 }));
        assert_eq!(budget.available(), 10_000);
    }

    #[tokio::test]
    async fn bodies_are_read_within_the_limit() {
        let budget = BodyBudget::new(10_000, Duration::from_secs(5));
        let r = budget.reserve(&HeaderMap::new(), 5).unwrap();
        assert_eq!(r.read(Body::from("abcde")).await.unwrap(), b"abcde");
        let err = r.read(Body::from("abcdef")).await.unwrap_err();
        assert!(matches!(err, BodyError::TooLarge { limit: 5 }));
    }

    #[tokio::test]
    async fn a_body_that_never_ends_times_out() {
        let budget = BodyBudget::new(10_000, Duration::from_millis(50));
        let r = budget.reserve(&HeaderMap::new(), 100).unwrap();
        let err = r.read(Body::new(Never)).await.unwrap_err();
        assert!(matches!(err, BodyError::TimedOut { .. }), "{err}");
        assert_eq!(err.status(), axum::http::StatusCode::REQUEST_TIMEOUT);
    }

    proptest::proptest! {
        #[test]
        fn an_idle_budget_reserves_the_declared_length_capped_or_refuses_too_large(
            value in "[ 0-9a-z+-]{0,24}",
            limit in 1usize..100_000,
            total in 1usize..100_000,
        ) {
            let budget = BodyBudget::new(total, Duration::from_secs(1));
            let mut headers = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(CONTENT_LENGTH, v);
            }
            let declared = value.trim().parse::<usize>().ok();
            match budget.reserve(&headers, limit) {
                Ok(reservation) => {
                    let reserved = total - budget.available();
                    proptest::prop_assert_eq!(reserved, declared.unwrap_or(limit).min(total));
                    drop(reservation);
                    proptest::prop_assert_eq!(budget.available(), total);
                }
                Err(BodyError::TooLarge { limit: l }) => {
                    proptest::prop_assert_eq!(l, limit);
                    proptest::prop_assert!(declared.is_some_and(|n| n > limit));
                }
                // An idle budget always has room for one body.
                Err(e) => proptest::prop_assert!(false, "unexpected {}", e),
            }
        }
    }

    /// A body whose bytes never come.
    struct Never;

    impl HttpBody for Never {
        type Data = axum::body::Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
            std::task::Poll::Pending
        }
    }
}
