//! Running a source environment's preprocess script on a delivery, before
//! its adapter parses it (docs/preprocess-scripts.md), and parsing what the
//! script put in place of the body (`normalized_event`, `items`).

use std::sync::LazyLock;

use serde_json::{Map, Value};
use tributary_adapter::{AdapterError, ItemError, Parsed, RawRequest, decode_body, verify};
use tributary_core::{
    FieldPath,
    config::DedupSettings,
    dedup::{self, DedupDecision},
    event::Event,
    json::json_type,
    path::DataAlias,
};
use tributary_script::{ScriptError, ScriptInput};

use crate::{Pipeline, PipelineError, Route, pipeline::parse_receive};

/// What a script made of a request that goes on to be parsed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Preprocessed {
    /// The outcome kept in the event's provenance (`script:enforced:verified` ...).
    pub(crate) label: &'static str,
    /// `verified` as returned (`None`: the result had none).
    pub(crate) verified: Option<bool>,
    /// The result's other keys; `None` when there were none.
    pub(crate) output: Option<Value>,
    /// What the result put in place of the body, when it did.
    pub(crate) replacement: Option<Replacement>,
}

/// What a script's result puts in place of the request's body for the
/// adapter to normalize.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Replacement {
    /// `normalized_event`: one object, normalized as the body.
    Event(Value),
    /// `items`: each one's `body` is normalized as if it had been sent
    /// alone, and its other keys join the event's preprocess output.
    Items(Vec<Item>),
}

/// One element of a result's `items`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Item {
    /// The object normalized as this event's body.
    pub(crate) body: Value,
    /// The item's other keys (`item_idempotency_key` ...).
    pub(crate) output: Map<String, Value>,
}

/// Most `items` one result may hold: the custom source's batch limit.
pub(crate) const MAX_SCRIPT_ITEMS: usize = tributary_http::MAX_BATCH_ITEMS;

/// The output key that, when a result or an item has it, is the event's
/// dedup key whatever the environment's key path.
pub(crate) const ITEM_KEY: &str = "item_idempotency_key";

/// Takes `normalized_event` and `items` out of a result's `output`, checked.
/// A problem is a schema error at `/preprocess/...`, the result as mappings
/// see it.
pub(crate) fn take_replacement(
    output: &mut Map<String, Value>,
) -> Result<Option<Replacement>, AdapterError> {
    let event = output.remove("normalized_event");
    let items = output.remove("items");
    match (event, items) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(AdapterError::schema(
            "script_result_invalid",
            "/preprocess",
            "the preprocess script returned both `normalized_event` and `items`; return one",
        )),
        (Some(event), None) => match event {
            Value::Object(_) => Ok(Some(Replacement::Event(event))),
            other => Err(AdapterError::schema(
                "script_result_invalid",
                "/preprocess/normalized_event",
                format!(
                    "the preprocess script returned `normalized_event` as {}, not an object",
                    json_type(&other)
                ),
            )),
        },
        (None, Some(items)) => items_of(items).map(|items| Some(Replacement::Items(items))),
    }
}

fn items_of(items: Value) -> Result<Vec<Item>, AdapterError> {
    let Value::Array(items) = items else {
        return Err(AdapterError::schema(
            "script_result_invalid",
            "/preprocess/items",
            format!(
                "the preprocess script returned `items` as {}, not an array",
                json_type(&items)
            ),
        ));
    };
    if items.len() > MAX_SCRIPT_ITEMS {
        return Err(AdapterError::schema(
            "script_result_invalid",
            "/preprocess/items",
            format!(
                "the preprocess script returned {} items; at most {MAX_SCRIPT_ITEMS} are accepted",
                items.len()
            ),
        ));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::Object(mut output) = item else {
                return Err(AdapterError::schema(
                    "script_result_invalid",
                    format!("/preprocess/items/{i}"),
                    format!(
                        "each of the preprocess script's `items` is an object with `body`, not {}",
                        json_type(&item)
                    ),
                ));
            };
            match output.remove("body") {
                Some(body @ Value::Object(_)) => Ok(Item { body, output }),
                found => Err(AdapterError::schema(
                    "script_result_invalid",
                    format!("/preprocess/items/{i}/body"),
                    format!(
                        "an item's `body` is the object to normalize as its event, not {}",
                        found.as_ref().map_or("missing", json_type)
                    ),
                )),
            }
        })
        .collect()
}

/// The adapter's parse of `req`, or of the bodies the script put in its
/// place. A replacement is parsed as if it had been sent alone, after the
/// environment's declarative verification ran on the body as received;
/// each event gets its item's output on top of the request's.
pub(crate) fn parse_preprocessed(
    route: Route<'_>,
    req: &mut RawRequest,
    preprocessed: Option<&Preprocessed>,
) -> Result<Parsed, AdapterError> {
    let Some(p) = preprocessed else {
        return parse_receive(route, req);
    };
    let Some(replacement) = &p.replacement else {
        return parse_receive(route, req);
    };
    let verification = {
        let body = decode_body(req)?;
        verify::enforce(route.settings.verification.as_ref(), req, &body)?
    };
    let request_output = p.output.as_ref().and_then(Value::as_object);
    let single;
    let (items_in, one_event) = match replacement {
        Replacement::Event(body) => {
            single = [Item {
                body: body.clone(),
                output: Map::new(),
            }];
            (&single[..], true)
        }
        Replacement::Items(items) => (&items[..], false),
    };
    // The replacement bodies are JSON text, not what the sender encoded.
    let headers = req.headers.clone();
    req.headers
        .retain(|(name, _)| !name.eq_ignore_ascii_case("content-encoding"));
    let received = std::mem::take(&mut req.body);
    req.prior_verification = Some(verification.clone());
    let mut items = Vec::with_capacity(items_in.len());
    let mut notes = Vec::new();
    for (index, item) in items_in.iter().enumerate() {
        let at = if one_event {
            "/preprocess/normalized_event".to_owned()
        } else {
            format!("/preprocess/items/{index}/body")
        };
        req.body = serde_json::to_vec(&item.body).unwrap_or_default();
        let output = merged(request_output, &item.output);
        match parse_receive(route, req) {
            Ok(parsed) => {
                notes.extend(parsed.notes.into_iter().map(|mut n| {
                    n.index = index;
                    n.field = format!("{at}{}", n.field);
                    n
                }));
                items.extend(parsed.items.into_iter().map(|item| match item {
                    Ok(mut event) => {
                        event.preprocess.clone_from(&output);
                        Ok(event)
                    }
                    Err(mut e) => {
                        e.index = index;
                        e.field = format!("{at}{}", e.field);
                        Err(e)
                    }
                }));
            }
            Err(e) => items.push(Err(ItemError::new(index, e.code(), at, e.message()))),
        }
    }
    req.body = received;
    req.headers = headers;
    req.prior_verification = None;
    Ok(Parsed {
        items,
        verification,
        notes,
        body_write_key: None,
    })
}

/// The request's output with an item's keys on top (an item's key wins).
fn merged(request: Option<&Map<String, Value>>, item: &Map<String, Value>) -> Option<Value> {
    let mut output = request.cloned().unwrap_or_default();
    output.extend(item.iter().map(|(k, v)| (k.clone(), v.clone())));
    (!output.is_empty()).then_some(Value::Object(output))
}

/// The path of [`ITEM_KEY`] in the preprocess output.
static ITEM_KEY_PATH: LazyLock<FieldPath> = LazyLock::new(|| {
    FieldPath::compile("preprocess.item_idempotency_key", DataAlias::Literal)
        .unwrap_or_else(|_| unreachable!("a valid dot path"))
});

/// [`dedup::apply`], where an event whose preprocess output has an
/// `item_idempotency_key` is deduplicated by it instead of the key path.
pub(crate) fn apply_dedup(event: &mut Event, settings: &DedupSettings) -> DedupDecision {
    let has_item_key = event
        .preprocess
        .as_ref()
        .and_then(|p| p.get(ITEM_KEY))
        .is_some_and(|k| !k.is_null());
    if has_item_key {
        let by_item = DedupSettings {
            enabled: settings.enabled,
            key_path: ITEM_KEY_PATH.clone(),
            window: settings.window,
        };
        dedup::apply(event, &by_item)
    } else {
        dedup::apply(event, settings)
    }
}

/// A refusal and the longer message the event log and the log line keep.
pub(crate) struct Refusal {
    pub(crate) error: PipelineError,
    pub(crate) code: &'static str,
    pub(crate) logged: String,
}

impl Pipeline {
    /// Runs `route`'s script on `req`, if it has one. With `enforce`, a
    /// result without `verified: true` is refused when the environment
    /// enforces; a rehearsal without verification passes `false`.
    pub(crate) async fn preprocess(
        &self,
        route: Route<'_>,
        req: &RawRequest,
        enforce: bool,
    ) -> Result<Option<Preprocessed>, Refusal> {
        let (Some(script), Some(settings)) = (route.script, route.settings.preprocess.as_ref())
        else {
            return Ok(None);
        };
        // A body that cannot be decoded is refused by the adapter, which
        // decodes it again and names the problem; the script never sees it.
        let Ok(body) = decode_body(req) else {
            return Ok(None);
        };
        let input = ScriptInput {
            body: body.into_owned(),
            headers: req.headers.clone(),
        };
        let enforced = enforce && settings.enforce;
        match self.scripts().run(script, input).await {
            Ok(outcome) => {
                let verified = outcome.verified == Some(true);
                if enforced && !verified {
                    let message = format!(
                        "the preprocess script of {} did not verify this request",
                        script.name()
                    );
                    return Err(Refusal {
                        error: PipelineError::Script {
                            code: "script_unverified",
                            message: message.clone(),
                            enforced: true,
                        },
                        code: "script_unverified",
                        logged: message,
                    });
                }
                let label = match (settings.enforce, verified) {
                    (true, true) => "script:enforced:verified",
                    (true, false) => "script:enforced:failed",
                    (false, true) => "script:unenforced:verified",
                    (false, false) => "script:unenforced:failed",
                };
                let mut output = outcome.output;
                let replacement = take_replacement(&mut output).map_err(|e| Refusal {
                    code: e.code(),
                    logged: e.to_string(),
                    error: e.into(),
                })?;
                Ok(Some(Preprocessed {
                    label,
                    verified: outcome.verified,
                    output: (!output.is_empty()).then_some(Value::Object(output)),
                    replacement,
                }))
            }
            Err(e) if e.is_transient() => Err(Refusal {
                code: e.code(),
                logged: e.to_string(),
                error: PipelineError::ScriptBusy(e),
            }),
            Err(e) => Err(script_failure(&e, settings.enforce)),
        }
    }
}

/// A script that failed refuses the request: 401 where it enforces, 422
/// where it does not (its output, which mappings may read, is missing).
pub(crate) fn script_failure(e: &ScriptError, enforced: bool) -> Refusal {
    Refusal {
        error: PipelineError::Script {
            code: e.code(),
            message: e.public_message(),
            enforced,
        },
        code: e.code(),
        logged: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    use super::{MAX_SCRIPT_ITEMS, Replacement, take_replacement};

    /// Any JSON, its object keys leaning to the ones the parser reads.
    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            ".{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("body".to_owned()),
                        Just("items".to_owned()),
                        Just("normalized_event".to_owned()),
                        Just("item_idempotency_key".to_owned()),
                        "[a-z]{1,3}",
                    ],
                    inner,
                    0..6,
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Any result parses or is refused at a field under `/preprocess`;
        /// what parses has objects as bodies, within the bound, and leaves
        /// neither key in the output.
        #[test]
        fn any_result_is_parsed_or_refused_never_a_panic(
            result in prop::collection::btree_map(
                prop_oneof![Just("items".to_owned()), Just("normalized_event".to_owned()), "[a-z]{1,3}"],
                json(),
                0..4,
            )
        ) {
            let mut output: Map<String, Value> = result.into_iter().collect();
            match take_replacement(&mut output) {
                Ok(replacement) => {
                    prop_assert!(!output.contains_key("items"));
                    prop_assert!(!output.contains_key("normalized_event"));
                    match replacement {
                        None => {}
                        Some(Replacement::Event(body)) => prop_assert!(body.is_object()),
                        Some(Replacement::Items(items)) => {
                            prop_assert!(items.len() <= MAX_SCRIPT_ITEMS);
                            for item in items {
                                prop_assert!(item.body.is_object());
                                prop_assert!(!item.output.contains_key("body"));
                            }
                        }
                    }
                }
                Err(e) => {
                    let body = e.to_body();
                    let field = body.error.field.unwrap_or_default();
                    prop_assert!(field.starts_with("/preprocess"), "{field}");
                }
            }
        }
    }

    #[test]
    fn items_past_the_bound_are_refused_at_the_field() {
        let item = json!({"body": {}});
        let mut output = Map::new();
        output.insert(
            "items".into(),
            Value::Array(vec![item; MAX_SCRIPT_ITEMS + 1]),
        );
        let e = take_replacement(&mut output).unwrap_err();
        assert_eq!(
            e.to_body().error.field.as_deref(),
            Some("/preprocess/items")
        );
        assert!(e.message().contains("at most 4000"), "{e}");
    }
}
