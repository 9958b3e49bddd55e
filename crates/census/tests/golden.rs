//! Golden fixtures: custom-destination requests and what they become.

use std::path::Path;

use serde_json::json;
use tributary_census::CustomDestination;
use tributary_resource_api::jsonrpc::Dispatch;

#[test]
fn rpc_fixtures() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/census/rpc");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 3);
    for path in files {
        let rendered = match CustomDestination::new().handle(&std::fs::read(&path).unwrap()) {
            Dispatch::Reply(v) => json!({"reply": v}),
            Dispatch::Write(w) => json!({
                "event_type": w.event_type, "accepted": w.accepted, "rejected": w.rejected,
                "payloads": w.payloads, "reply": w.reply,
            }),
        };
        let name = format!("rpc_{}", path.file_stem().unwrap().to_string_lossy());
        insta::with_settings!({ snapshot_path => "snapshots", prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_json_snapshot!(name, rendered);
        });
    }
}
