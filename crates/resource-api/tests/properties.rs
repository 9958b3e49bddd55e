//! Properties: no input makes the parsers panic; refusals are typed and name a field.

use proptest::prelude::*;
use tributary_adapter::{RawRequest, testing};
use tributary_core::path::DataAlias;
use tributary_resource_api::{
    ApiRequest, PolytomicAdapter, ResourceError, RowAdapter, jsonrpc, parse_call,
};

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-z0-9 ]{0,8}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("id".to_owned()),
                    Just("users".to_owned()),
                    Just("recipients".to_owned()),
                    Just("members".to_owned()),
                    Just("user".to_owned()),
                    Just("tenant".to_owned()),
                    Just("data".to_owned()),
                    Just("actor".to_owned()),
                    Just("collection".to_owned()),
                    Just("cancellation_key".to_owned()),
                    Just("email".to_owned()),
                    "[a-z]{1,4}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

const PATHS: &[&str] = &[
    "/v1/users/u1",
    "/v1/users/bulk/identify",
    "/v1/objects/projects/p1",
    "/v1/objects/projects/p1/subscriptions",
    "/v1/tenants/t1",
    "/v1/audiences/vip/members",
    "/v1/workflows/welcome/trigger",
    "/v1/workflows/welcome/cancel",
];

proptest! {
    #[test]
    fn parse_call_never_panics_on_bytes(method in "(GET|PUT|POST|DELETE|put)", path in "/[a-z0-9/%{}._-]{0,40}", query in proptest::option::of("[a-z_=&%0-9\\[\\]{}]{0,30}"), body in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_call(ApiRequest { method: &method, path: &path, query: query.as_deref(), body: &body });
    }

    #[test]
    fn parse_call_types_every_refusal(method in "(PUT|POST|DELETE)", path in prop::sample::select(PATHS), body in json_value()) {
        let bytes = serde_json::to_vec(&body).unwrap();
        match parse_call(ApiRequest { method: &method, path, query: None, body: &bytes }) {
            // Every call plans its own action; only an empty bulk identify plans none.
            Ok(call) => prop_assert!(
                !call.payloads.is_empty() || call.operation == tributary_resource_api::Operation::BulkIdentifyUsers
            ),
            Err(ResourceError::Invalid { field, message, .. }) => {
                prop_assert!(field.is_empty() || field.starts_with('/'));
                prop_assert!(!message.is_empty());
            }
            Err(ResourceError::UnknownRoute { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    #[test]
    fn jsonrpc_never_panics(body in prop::collection::vec(any::<u8>(), 0..200), v in json_value()) {
        let _ = jsonrpc::parse_request(&body);
        if let Err(e) = jsonrpc::parse_request(&serde_json::to_vec(&v).unwrap()) {
            prop_assert!([jsonrpc::PARSE_ERROR, jsonrpc::INVALID_REQUEST, jsonrpc::INVALID_PARAMS].contains(&e.code));
        }
    }

    #[test]
    fn row_adapters_never_panic(body in prop::collection::vec(any::<u8>(), 0..200), v in json_value()) {
        let settings = testing::source_environment(DataAlias::Literal);
        for bytes in [body, serde_json::to_vec(&v).unwrap()] {
            let req = RawRequest::new("s", "e", bytes, testing::received_at());
            let _ = RowAdapter::new().parse(&req, &settings);
            let _ = PolytomicAdapter::new().parse(&req, &settings);
        }
    }
}
