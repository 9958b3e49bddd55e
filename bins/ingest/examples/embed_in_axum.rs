//! Embedding the ingest service in an existing axum application: the
//! service's routes nested under `/tributary`, its workers running beside
//! the application's own work, no socket of its own.
//!
//! Run: `cargo run -p tributary-ingest --example embed_in_axum`. CI runs it
//! through its test (`cargo test` builds and runs examples with `test = true`).

use axum::{Router, body::Body, http::Request, routing::get};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tributary_core::config;
use tributary_ingest::Service;

const TOKEN: &str = "tok_embedded_example_0123456789";

async fn run() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let text = format!(
        r#"
[store]
path = "{}"

[environments.production]

[[sources]]
key = "app"
kind = "http"

[sources.environments.production]
token = "{TOKEN}"

[[sources.environments.production.mappings]]
event = "user.created"
action = "identify_user"
user_id = "body.id"
email = "body.email"
"#,
        data.path().display()
    );
    let config = config::load("embedded.toml", &text, &|name| std::env::var(name).ok())?;
    let service = Service::build(config, Vec::new()).await?;
    let shutdown = CancellationToken::new();
    let running = service.start(&shutdown);

    // The host application's own router, with Tributary nested in it.
    let app = Router::new()
        .route("/", get(|| async { "the host application" }))
        .nest("/tributary", service.router());

    let event = r#"{"type": "user.created", "id": "u-42", "email": "ada@example.org"}"#;
    let response = app
        .clone()
        .oneshot(
            Request::post(format!("/tributary/integrations/receive/{TOKEN}"))
                .header("content-type", "application/json")
                .body(Body::from(event))?,
        )
        .await?;
    anyhow::ensure!(response.status().is_success(), "{}", response.status());

    // The workers run the identify through the local sink; wait for it.
    let store = service.state().pipeline.store().clone();
    let mut identified = None;
    for _ in 0..200 {
        identified = store
            .local_record(tributary_store::LocalKind::User, "production", "", "u-42")
            .await?;
        if identified.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let user = identified.ok_or_else(|| anyhow::anyhow!("the identify never ran"))?;
    println!("identified: {}", user.data);
    anyhow::ensure!(user.data["email"] == "ada@example.org");

    shutdown.cancel();
    running.stop().await;
    Ok(())
}

#[cfg_attr(test, allow(dead_code))]
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    run().await
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_example_runs() {
        super::run().await.unwrap();
    }
}
