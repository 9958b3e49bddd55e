//! The embedded destination's methods, error codes and properties.

use proptest::prelude::*;
use serde_json::{Value, json};
use tributary_core::plan::ActionPayload;
use tributary_hightouch::EmbeddedDestination;
use tributary_resource_api::jsonrpc::{Dispatch, RowWrite};

fn call(method: &str, params: Value) -> Dispatch {
    let body = json!({"jsonrpc": "2.0", "id": "r1", "method": method, "params": params});
    EmbeddedDestination::new().handle(&serde_json::to_vec(&body).unwrap())
}

fn reply(d: Dispatch) -> Value {
    match d {
        Dispatch::Reply(v) => v,
        Dispatch::Write(w) => panic!("expected a reply, got a write {w:?}"),
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
    let r = reply(call("list_objects", json!({})));
    assert_eq!(r["id"], "r1");
    let ids: Vec<&str> = r["result"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["users", "objects", "audiences"]);
    let r = reply(call("list_modes", json!({"object": "audiences"})));
    assert_eq!(r["result"]["modes"][1]["id"], "mirror");
    let r = reply(call("list_fields", json!({"object": "users"})));
    assert_eq!(r["result"]["fields"][0]["id"], "id");
    let r = reply(call("list_options", json!({"object": "audiences"})));
    assert_eq!(r["result"]["options"][0]["id"], "audience_key");
    let r = reply(call("behavior", json!({"object": "audiences"})));
    assert_eq!(r["result"]["batchSize"], 1000);
    assert_eq!(r["result"]["operations"]["change"], false);
    assert_eq!(r["result"]["skipInitialRun"], false);
    let r = reply(call(
        "validate",
        json!({"configuration": {"object": "audiences"}}),
    ));
    assert_eq!(r["result"]["valid"], false);
    assert_eq!(
        r["result"]["errors"][0]["field"],
        "/configuration/audience_key"
    );
    let r = reply(call(
        "validate",
        json!({"configuration": {"object": "audiences", "audience_key": "vip"}}),
    ));
    assert_eq!(r["result"]["valid"], true);
}

#[test]
fn protocol_errors_use_the_spec_codes() {
    let h = |b: &[u8]| reply(EmbeddedDestination::new().handle(b));
    assert_eq!(h(b"not json")["error"]["code"], -32700);
    assert_eq!(h(br#"{"id":1,"method":"add"}"#)["error"]["code"], -32600);
    assert_eq!(
        reply(call("drop_tables", json!({})))["error"]["code"],
        -32601
    );
    let r = reply(call("list_fields", json!({"object": "planets"})));
    assert_eq!(r["error"]["code"], -32602);
    assert_eq!(r["error"]["data"]["field"], "/object");
    let r = reply(call(
        "add",
        json!({"configuration": {"object": "users"}, "rows": []}),
    ));
    assert_eq!(r["error"]["data"]["field"], "/idColumn");
    let rows: Vec<Value> = (0..1001).map(|i| json!({"id": i})).collect();
    let r = reply(call(
        "add",
        json!({"idColumn": "id", "configuration": {"object": "users"}, "rows": rows}),
    ));
    assert_eq!(r["error"]["code"], -32602);
    assert_eq!(r["error"]["data"]["field"], "/rows");
}

#[test]
fn users_add_change_remove_with_rejected_rows() {
    let w = write(call(
        "add",
        json!({"idColumn": "uid", "configuration": {"object": "users"},
               "rows": [{"uid": "u1", "email": "a@b", "plan": "pro"}, {"email": "no id"}, {"uid": "u3", "email": 7}]}),
    ));
    assert_eq!(w.event_type, "hightouch.users.add");
    assert_eq!((w.accepted, w.rejected), (1, 2));
    let ActionPayload::IdentifyUser {
        user_id,
        attributes,
    } = &w.payloads[0]
    else {
        panic!()
    };
    assert_eq!(user_id, "u1");
    assert_eq!(attributes.get("plan"), Some(&json!("pro")));
    assert!(attributes.get("uid").is_none());
    let rejected = &w.reply["result"]["rejectedRows"];
    assert_eq!(rejected[0]["id"], 1);
    assert!(rejected[0]["reason"].as_str().unwrap().contains("uid"));
    assert_eq!(rejected[1]["id"], "u3");
    let w = write(call(
        "remove",
        json!({"idColumn": "uid", "configuration": {"object": "users"}, "rows": [{"uid": "u1"}]}),
    ));
    assert!(matches!(&w.payloads[0], ActionPayload::DeleteUser { user_id } if user_id == "u1"));
}

#[test]
fn audiences_mirror_and_insert_only() {
    let params = |mode: &str| {
        json!({"idColumn": "user_id", "configuration": {"object": "audiences", "audience_key": "vip", "mode": mode},
               "rows": [{"user_id": "u1", "tenant": "t1"}, {"user_id": "u2"}]})
    };
    let w = write(call("add", params("mirror")));
    let ActionPayload::AddAudienceMember {
        audience,
        members,
        create_audience,
    } = &w.payloads[0]
    else {
        panic!()
    };
    assert_eq!(
        (audience.as_str(), members.len(), *create_audience),
        ("vip", 2, true)
    );
    assert_eq!(members[0].tenant.as_deref(), Some("t1"));
    let w = write(call("remove", params("mirror")));
    assert!(matches!(
        &w.payloads[0],
        ActionPayload::RemoveAudienceMember { .. }
    ));
    let w = write(call("remove", params("insert")));
    assert!(w.payloads.is_empty());
    assert_eq!(w.accepted, 2);
    let w = write(call("change", params("mirror")));
    assert_eq!((w.accepted, w.rejected), (0, 2));
    let w = write(call(
        "add",
        json!({"idColumn": "id", "configuration": {"object": "objects", "collection": "projects"}, "rows": [{"id": "p1", "name": "P"}]}),
    ));
    assert!(
        matches!(&w.payloads[0], ActionPayload::SetObject { collection, id, .. } if collection == "projects" && id == "p1")
    );
}

proptest! {
    #[test]
    fn never_panics_and_always_answers_json_rpc(body in prop::collection::vec(any::<u8>(), 0..300)) {
        match EmbeddedDestination::new().handle(&body) {
            Dispatch::Reply(v) => prop_assert_eq!(&v["jsonrpc"], "2.0"),
            Dispatch::Write(w) => prop_assert_eq!(w.accepted + w.rejected, w.data["rows"].as_array().map_or(0, Vec::len)),
        }
    }

    #[test]
    fn rows_are_accepted_or_rejected_never_lost(
        method in prop::sample::select(vec!["add", "change", "remove"]),
        object in prop::sample::select(vec!["users", "objects", "audiences"]),
        rows in prop::collection::vec(prop_oneof![
            Just(json!({"id": "u1"})),
            Just(json!({"id": 5, "email": "x"})),
            Just(json!({"id": null})),
            Just(json!({"email": 3, "id": "a"})),
            Just(json!({"id": "t", "tenant": []})),
            Just(json!([1])),
            Just(json!("row")),
        ], 0..20),
    ) {
        let d = call(method, json!({"idColumn": "id", "configuration": {"object": object, "collection": "c", "audience_key": "k"}, "rows": rows}));
        let w = write(d);
        prop_assert_eq!(w.accepted + w.rejected, rows.len());
        prop_assert_eq!(w.reply["result"]["rejectedRows"].as_array().unwrap().len(), w.rejected);
    }
}
