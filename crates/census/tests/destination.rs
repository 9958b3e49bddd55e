//! The custom destination's methods, error codes and properties.

use proptest::prelude::*;
use serde_json::{Value, json};
use tributary_census::CustomDestination;
use tributary_core::plan::ActionPayload;
use tributary_resource_api::jsonrpc::{Dispatch, RowWrite};

fn call(method: &str, params: Value) -> Dispatch {
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": method, "params": params});
    CustomDestination::new().handle(&serde_json::to_vec(&body).unwrap())
}

fn reply(d: Dispatch) -> Value {
    match d {
        Dispatch::Reply(v) => v,
        Dispatch::Write(w) => panic!("expected a reply, got {w:?}"),
    }
}

fn write(d: Dispatch) -> RowWrite {
    match d {
        Dispatch::Write(w) => w,
        Dispatch::Reply(v) => panic!("expected a write, got {v}"),
    }
}

#[test]
fn metadata_methods() {
    assert_eq!(
        reply(call("test_connection", json!({})))["result"]["success"],
        true
    );
    let r = reply(call("list_objects", json!({})));
    assert_eq!(r["result"]["objects"][0]["object_api_name"], "audiences");
    let r = reply(call(
        "list_fields",
        json!({"object": {"object_api_name": "audiences"}}),
    ));
    assert_eq!(r["result"]["fields"][0]["field_api_name"], "user_id");
    assert_eq!(r["result"]["fields"][0]["identifier"], true);
    let r = reply(call(
        "supported_operations",
        json!({"object": {"object_api_name": "audiences"}}),
    ));
    assert_eq!(
        r["result"]["operations"],
        json!(["insert", "mirror", "delete"])
    );
    let r = reply(call("get_sync_speed", json!({})));
    assert_eq!(r["result"]["maximum_batch_size"], 1000);
    assert_eq!(r["id"], 9);
}

#[test]
fn protocol_errors() {
    let h = |b: &[u8]| reply(CustomDestination::new().handle(b));
    assert_eq!(h(b"{{")["error"]["code"], -32700);
    assert_eq!(
        h(br#"{"jsonrpc":"1.0","id":1,"method":"x"}"#)["error"]["code"],
        -32600
    );
    assert_eq!(reply(call("nope", json!({})))["error"]["code"], -32601);
    let r = reply(call("list_fields", json!({})));
    assert_eq!(
        (
            r["error"]["code"].as_i64(),
            r["error"]["data"]["field"].as_str()
        ),
        (Some(-32602), Some("/object"))
    );
    let r = reply(call(
        "sync_batch",
        json!({"sync_plan": {"object": {"object_api_name": "users"}}}),
    ));
    assert_eq!(r["error"]["data"]["field"], "/records");
}

#[test]
fn sync_batch_reports_each_record() {
    let w = write(call(
        "sync_batch",
        json!({"sync_plan": {"object": {"object_api_name": "users"}, "operation": "upsert",
                             "schema": {"external_id": {"active_identifier": true}}},
               "records": [{"external_id": "u1", "email": "a@b"}, {"email": "x"}, 5]}),
    ));
    assert_eq!(w.event_type, "census.users.upsert");
    let results = w.reply["result"]["record_results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0], json!({"identifier": "u1", "success": true}));
    assert_eq!(results[1]["success"], false);
    assert!(
        results[1]["error_message"]
            .as_str()
            .unwrap()
            .contains("external_id")
    );
    assert!(
        matches!(&w.payloads[0], ActionPayload::IdentifyUser { user_id, .. } if user_id == "u1")
    );
    let w = write(call(
        "sync_batch",
        json!({"sync_plan": {"object": {"object_api_name": "audiences"}, "operation": "delete"},
               "records": [{"user_id": "u1", "audience_key": "a"}, {"user_id": "u2", "audience_key": "b", "tenant": "t"}]}),
    ));
    assert_eq!(w.payloads.len(), 2);
    assert!(
        w.payloads
            .iter()
            .all(|p| matches!(p, ActionPayload::RemoveAudienceMember { .. }))
    );
}

proptest! {
    #[test]
    fn never_panics_and_always_answers_json_rpc(body in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Dispatch::Reply(v) = CustomDestination::new().handle(&body) {
            prop_assert_eq!(&v["jsonrpc"], "2.0");
        }
    }

    #[test]
    fn every_record_gets_a_result(
        object in prop::sample::select(vec!["users", "objects", "audiences"]),
        operation in prop::sample::select(vec!["upsert", "insert", "delete", "mirror"]),
        records in prop::collection::vec(prop_oneof![
            Just(json!({"id": "u1", "user_id": "u1", "collection": "c", "audience_key": "k"})),
            Just(json!({"id": 3})),
            Just(json!({"user_id": [], "audience_key": "k"})),
            Just(json!({"id": "x", "email": {}})),
            Just(json!(null)),
        ], 0..20),
    ) {
        let w = write(call("sync_batch", json!({"sync_plan": {"object": {"object_api_name": object}, "operation": operation}, "records": records})));
        prop_assert_eq!(w.reply["result"]["record_results"].as_array().unwrap().len(), records.len());
        prop_assert_eq!(w.accepted + w.rejected, records.len());
    }
}
