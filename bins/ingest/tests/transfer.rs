//! The real binary: `config export` prints a file `check-config` accepts
//! and `config import` takes back to the same state, through the running
//! service and offline; and the rule between the file's sources and the
//! store's, both ways.

mod process;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output},
};

use serde_json::{Value, json};

use process::{ADMIN, free_port, start, wait_ready};

const FILE_TOKEN: &str = "tok_transfer_file_0123456789ab";

fn write_file(dir: &Path, port: u16, extra: &str) -> PathBuf {
    let text = format!(
        r#"[server]
listen = "127.0.0.1:{port}"

[store]
path = "{}"

[admin]
token = "{ADMIN}"

[environments.development]
[environments.production]

[[sources]]
key = "from-file"
kind = "http-legacy"

[sources.environments.development]
token = "{FILE_TOKEN}"
{extra}"#,
        dir.join("data").display()
    );
    let path = dir.join("tributary.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn cli(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tributary-ingest"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

struct Service {
    child: Child,
    base: String,
    client: reqwest::Client,
}

impl Service {
    async fn start(config: &Path, port: u16) -> Self {
        let child = start(config);
        let client = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        wait_ready(&client, &base).await;
        Self {
            child,
            base,
            client,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(ADMIN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn receive(&self, token: &str) -> u16 {
        self.client
            .post(format!("{}/integrations/receive/{token}", self.base))
            .json(&json!({"type": "track", "event": "Signed Up", "userId": "u1"}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Every source as the API shows it, without the version markers a
    /// new revision changes.
    async fn sources(&self) -> Value {
        let (_, mut listed) = self.call(reqwest::Method::GET, "/sources", None).await;
        for source in listed["sources"].as_array_mut().unwrap() {
            let source = source.as_object_mut().unwrap();
            source.remove("etag");
            source.remove("revision");
            for env in source["environments"].as_object_mut().unwrap().values_mut() {
                env.as_object_mut().unwrap().remove("status");
            }
        }
        listed["sources"].take()
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[tokio::test]
async fn export_then_import_gives_the_same_sources_online_and_offline() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_file(dir.path(), port, "");
    let service = Service::start(&config, port).await;
    let (status, created) = service
        .call(
            reqwest::Method::POST,
            "/sources",
            Some(json!({"key": "web", "kind": "segment", "name": "Web", "description": "site"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let (status, _) = service
        .call(
            reqwest::Method::POST,
            "/sources/web/environments/production/mappings",
            Some(
                json!({"id": "welcome", "event": "Signed Up", "action": "trigger_workflow",
                        "workflow": "welcome", "recipients": "userId", "active": false}),
            ),
        )
        .await;
    assert_eq!(status, 201);
    let before = service.sources().await;

    // Export through the running service; the text is a valid file.
    let exported = ok(cli(&config, &["config", "export"]));
    assert!(exported.contains("key = \"web\""), "{exported}");
    let export_file = dir.path().join("exported.toml");
    std::fs::write(&export_file, &exported).unwrap();
    let checked = ok(cli(
        &export_file,
        &["check-config", export_file.to_str().unwrap()],
    ));
    assert!(checked.contains("Configuration is valid."), "{checked}");

    // Remove the stored source, then import the export back.
    let (status, _) = service
        .call(reqwest::Method::DELETE, "/sources/web?force=true", None)
        .await;
    assert_eq!(status, 200);
    let dry: Value = serde_json::from_str(&ok(cli(
        &config,
        &[
            "config",
            "import",
            export_file.to_str().unwrap(),
            "--dry-run",
        ],
    )))
    .unwrap();
    let steps = dry["steps"].as_array().unwrap();
    assert!(
        steps
            .iter()
            .any(|s| s["key"] == "web" && s["action"] == "create"),
        "{dry}"
    );
    assert!(
        steps
            .iter()
            .any(|s| s["key"] == "from-file" && s["action"] == "skipped"),
        "{dry}"
    );
    assert!(dry["revision"].is_null());
    let (status, _) = service
        .call(reqwest::Method::GET, "/sources/web", None)
        .await;
    assert_eq!(status, 404, "a dry run changes nothing");
    ok(cli(
        &config,
        &["config", "import", export_file.to_str().unwrap()],
    ));
    assert_eq!(
        service.sources().await,
        before,
        "the same state as exported"
    );
    // Importing the same again changes nothing.
    let again: Value = serde_json::from_str(&ok(cli(
        &config,
        &["config", "import", export_file.to_str().unwrap()],
    )))
    .unwrap();
    assert!(again["revision"].is_null(), "{again}");
    service.stop();

    // With the service stopped, the commands open the store themselves.
    let offline = ok(cli(&config, &["config", "export"]));
    let stored_part = |text: &str| text[text.find("# Sources made").unwrap()..].to_owned();
    assert_eq!(
        stored_part(&offline).lines().skip(1).collect::<Vec<_>>(),
        stored_part(&exported).lines().skip(1).collect::<Vec<_>>(),
        "the same sources, whatever the revision line says"
    );
}

#[tokio::test]
async fn the_file_wins_over_a_stored_source_with_its_key_and_the_api_never_shadows_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_file(dir.path(), port, "");
    let service = Service::start(&config, port).await;
    // The API cannot make a source the file defines.
    let (status, body) = service
        .call(
            reqwest::Method::POST,
            "/sources",
            Some(json!({"key": "from-file", "kind": "http"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "managed_by_file");
    let (_, created) = service
        .call(
            reqwest::Method::POST,
            "/sources",
            Some(json!({"key": "web", "kind": "segment"})),
        )
        .await;
    let stored_token = created["secrets"]["development"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(service.receive(&stored_token).await, 200);
    service.stop();

    // The operator then writes `web` into the file: the file's wins.
    let file_web = "tok_transfer_fileweb_0123456789";
    let config = write_file(
        dir.path(),
        port,
        &format!(
            "\n[[sources]]\nkey = \"web\"\nkind = \"segment\"\n\n[sources.environments.development]\ntoken = \"{file_web}\"\n"
        ),
    );
    let service = Service::start(&config, port).await;
    assert_eq!(service.receive(file_web).await, 200);
    assert_eq!(
        service.receive(&stored_token).await,
        404,
        "the stored source with the file's key is not served"
    );
    let (_, web) = service
        .call(reqwest::Method::GET, "/sources/web", None)
        .await;
    assert_eq!(web["managed_by"], "file", "{web}");
    service.stop();
}
