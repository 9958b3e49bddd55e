//! Forwarding events to Segment from a Rust service with the outbound
//! crate alone: typed messages, a durable queue (a 2xx to your own caller
//! can wait for `submit`, which returns once the entries are on disk), and
//! the dispatcher that ships them in batches with retries.
//!
//! The example sends to a fake Segment on loopback (feature `fake-segment`);
//! point `DeliverySettings::host` at Segment for real.
//! Run: `cargo run -p tributary-outbound --features fake-segment --example forward_to_segment`.
//! CI runs it through its test.

use std::time::Duration;

use serde_json::{Map, json};
use tokio_util::sync::CancellationToken;
use tributary_core::Secret;
use tributary_outbound::{
    Common, DeliverySettings, Destination, Dispatcher, DurableQueue, Identity, Message, Track,
    fake_segment::FakeSegment,
};

async fn run() -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let segment = FakeSegment::start().await;
    let dir = tempfile::tempdir()?;
    let queue = DurableQueue::open(dir.path().join("queue.db"))?;

    // Two messages for the `production` environment, each validated and
    // given a `messageId` Segment deduplicates on.
    let mut messages = Vec::new();
    for (user, plan) in [("u-1", "team"), ("u-2", "pro")] {
        let mut properties = Map::new();
        properties.insert("plan".into(), json!(plan));
        let message = Message::Track(Track {
            identity: Identity::user(user),
            common: Common::new(),
            event: "Plan Upgraded".into(),
            properties,
        });
        messages.push(message.encode()?);
    }
    queue.submit("production", messages, 32_000).await?;

    let settings = DeliverySettings {
        host: segment.host(),
        ..DeliverySettings::default()
    };
    let routes = vec![Destination {
        environment: "production".into(),
        write_key: Secret::new("segment-write-key"),
    }];
    let shutdown = CancellationToken::new();
    let dispatcher = tokio::spawn(Dispatcher::new(queue, settings, routes)?.run(shutdown.clone()));
    let delivered = segment.wait_for_accepted(2, Duration::from_secs(10)).await;
    shutdown.cancel();
    dispatcher.await?;
    Ok(delivered)
}

#[cfg_attr(test, allow(dead_code))]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    for id in run().await? {
        println!("Segment accepted {id}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_example_delivers_both_messages() {
        let delivered = super::run().await.unwrap();
        assert_eq!(delivered.len(), 2, "{delivered:?}");
    }
}
