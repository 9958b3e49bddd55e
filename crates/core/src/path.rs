//! Field paths, compiled once when the configuration loads
//! (docs/product-decisions.md, "Mappings").
//!
//! Forms:
//! - dot paths relative to the raw event: `properties.commenter.id`, `userId`,
//!   `items.0.id` (a numeric segment indexes an array, or names an object key);
//! - `body.x`: the same, with the new product's namespace spelled out;
//! - `headers.x-name`: a request header (case-insensitive);
//! - `preprocess.x`: the output of the source environment's preprocess
//!   script (docs/preprocess-scripts.md); a body member named `preprocess`
//!   is read as `body.preprocess.x`;
//! - `data.x`: for Segment-shaped and legacy sources, the event's data
//!   (track properties, identify traits), the legacy alias of `properties.x`;
//!   for other kinds an ordinary path into the body;
//! - anything starting with `$`: RFC 9535 JSONPath over the raw event, parsed
//!   here once with jsonpath-rust's parser. Regex filters (`match`, `search`)
//!   are refused: the library compiles their regex on every evaluation.

use std::{borrow::Cow, fmt};

use jsonpath_rust::{parser::model::JpQuery, query::js_path_process};
use serde_json::{Map, Value};

use crate::event::{Event, Headers};

/// A compiled path. Cheap to evaluate: no parsing, no allocation for dot paths.
#[derive(Clone)]
pub struct FieldPath {
    source: Box<str>,
    kind: PathKind,
}

#[derive(Clone)]
enum PathKind {
    Walk {
        root: Root,
        segments: Box<[Segment]>,
    },
    Header(Box<str>),
    AllHeaders,
    JsonPath(Box<JpQuery>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Root {
    Body,
    Data,
    Preprocess,
}

#[derive(Clone)]
struct Segment {
    key: Box<str>,
    index: Option<usize>,
}

/// Why a path did not compile.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Nothing to resolve.
    #[error("path is empty")]
    Empty,
    /// `a..b`, a leading or trailing dot.
    #[error("path `{0}` has an empty segment")]
    EmptySegment(String),
    /// `headers.` without a name.
    #[error("path `{0}` names no header")]
    NoHeaderName(String),
    /// jsonpath-rust refused it.
    #[error("invalid JSONPath `{path}`: {message}")]
    JsonPath {
        /// The path.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// A regex filter.
    #[error(
        "JSONPath `{0}` uses a regex filter (`match` or `search`); these are not allowed in mappings because they recompile per event"
    )]
    RegexFilter(String),
}

/// How `data.` is read, decided per source kind when the config loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataAlias {
    /// `data.x` reads the event's data (properties or traits).
    EventData,
    /// `data.x` is an ordinary path into the body.
    Literal,
}

/// What a path is evaluated against.
#[derive(Clone, Copy)]
pub struct PathInput<'a> {
    /// The raw event (the request body, or one batch item).
    pub body: &'a Value,
    /// The event's data.
    pub data: &'a Value,
    /// Request headers, lowercase names.
    pub headers: &'a Headers,
    /// The preprocess script's output, when a script ran.
    pub preprocess: Option<&'a Value>,
}

impl<'a> PathInput<'a> {
    /// Everything paths can reach in a normalized event.
    pub fn of(event: &'a Event) -> Self {
        Self {
            body: &event.raw,
            data: &event.data,
            headers: &event.headers,
            preprocess: event.preprocess.as_ref(),
        }
    }
}

impl FieldPath {
    /// Compiles `path`. `alias` says how `data.` reads for this source kind.
    pub fn compile(path: &str, alias: DataAlias) -> Result<Self, PathError> {
        let path = path.trim();
        if path.is_empty() {
            return Err(PathError::Empty);
        }
        let kind = if path.starts_with('$') {
            let query =
                jsonpath_rust::parser::parse_json_path(path).map_err(|e| PathError::JsonPath {
                    path: path.to_owned(),
                    message: e.to_string(),
                })?;
            let debug = format!("{query:?}");
            if debug.contains("Match(") || debug.contains("Search(") {
                return Err(PathError::RegexFilter(path.to_owned()));
            }
            PathKind::JsonPath(Box::new(query))
        } else if path == "headers" {
            PathKind::AllHeaders
        } else if let Some(name) = path.strip_prefix("headers.") {
            if name.is_empty() {
                return Err(PathError::NoHeaderName(path.to_owned()));
            }
            PathKind::Header(name.to_ascii_lowercase().into())
        } else {
            let (root, rest) = match path.split_once('.') {
                _ if path == "body" => (Root::Body, ""),
                _ if path == "preprocess" => (Root::Preprocess, ""),
                Some(("preprocess", rest)) => (Root::Preprocess, rest),
                _ if path == "data" && alias == DataAlias::EventData => (Root::Data, ""),
                Some(("body", rest)) => (Root::Body, rest),
                Some(("data", rest)) if alias == DataAlias::EventData => (Root::Data, rest),
                _ => (Root::Body, path),
            };
            let segments = if rest.is_empty() {
                Vec::new()
            } else {
                rest.split('.')
                    .map(|key| {
                        if key.is_empty() {
                            Err(PathError::EmptySegment(path.to_owned()))
                        } else {
                            Ok(Segment {
                                key: key.into(),
                                index: key.parse().ok(),
                            })
                        }
                    })
                    .collect::<Result<_, _>>()?
            };
            PathKind::Walk {
                root,
                segments: segments.into_boxed_slice(),
            }
        };
        Ok(Self {
            source: path.into(),
            kind,
        })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Resolves the path. `None` when it reaches nothing; a JSON `null` found
    /// at the path is returned as `Some(Null)` so callers can tell "clear" from
    /// "absent". A JSONPath with several matches yields them as an array.
    pub fn resolve<'a>(&self, input: PathInput<'a>) -> Option<Cow<'a, Value>> {
        match &self.kind {
            PathKind::Walk { root, segments } => {
                let mut current = match root {
                    Root::Body => input.body,
                    Root::Data => input.data,
                    Root::Preprocess => input.preprocess?,
                };
                for seg in segments.iter() {
                    current = match current {
                        Value::Object(map) => map.get(&*seg.key)?,
                        Value::Array(items) => items.get(seg.index?)?,
                        _ => return None,
                    };
                }
                Some(Cow::Borrowed(current))
            }
            PathKind::Header(name) => input
                .headers
                .get(&**name)
                .map(|v| Cow::Owned(Value::String(v.clone()))),
            PathKind::AllHeaders => Some(Cow::Owned(Value::Object(
                input
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect::<Map<_, _>>(),
            ))),
            PathKind::JsonPath(query) => {
                let mut found = js_path_process(query, input.body).ok()?;
                match found.len() {
                    0 => None,
                    1 => found.pop().map(|r| Cow::Borrowed(r.val())),
                    _ => Some(Cow::Owned(Value::Array(
                        found.into_iter().map(|r| r.val().clone()).collect(),
                    ))),
                }
            }
        }
    }
}

impl fmt::Debug for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FieldPath({:?})", self.source)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl PartialEq for FieldPath {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(path: &str, alias: DataAlias, body: &Value, data: &Value) -> Option<Value> {
        let headers: Headers = [("x-clay-table-id".to_owned(), "t_1".to_owned())].into();
        FieldPath::compile(path, alias)
            .unwrap()
            .resolve(PathInput {
                body,
                data,
                headers: &headers,
                preprocess: Some(&json!({"sig": {"ok": true}})),
            })
            .map(Cow::into_owned)
    }

    #[test]
    fn dot_paths_walk_objects_and_arrays() {
        let body = json!({"userId": "u1", "properties": {"commenter": {"id": 123}},
                          "items": [{"id": "a"}, {"id": "b"}], "map": {"0": "zero"}});
        let d = json!({});
        let a = DataAlias::EventData;
        assert_eq!(eval("userId", a, &body, &d), Some(json!("u1")));
        assert_eq!(
            eval("properties.commenter.id", a, &body, &d),
            Some(json!(123))
        );
        assert_eq!(eval("items.1.id", a, &body, &d), Some(json!("b")));
        assert_eq!(eval("map.0", a, &body, &d), Some(json!("zero")));
        assert_eq!(eval("items.7.id", a, &body, &d), None);
        assert_eq!(eval("userId.x", a, &body, &d), None);
        assert_eq!(eval("body.userId", a, &body, &d), Some(json!("u1")));
        assert_eq!(eval("body", a, &body, &d), Some(body.clone()));
    }

    #[test]
    fn preprocess_paths_read_the_scripts_output() {
        let body = json!({"preprocess": {"sig": 1}});
        let d = json!({});
        let a = DataAlias::Literal;
        assert_eq!(eval("preprocess.sig.ok", a, &body, &d), Some(json!(true)));
        assert_eq!(
            eval("preprocess", a, &body, &d),
            Some(json!({"sig": {"ok": true}}))
        );
        assert_eq!(eval("body.preprocess.sig", a, &body, &d), Some(json!(1)));
        assert_eq!(eval("preprocess.missing", a, &body, &d), None);
    }

    #[test]
    fn data_is_an_alias_only_for_segment_shaped_kinds() {
        let body = json!({"properties": {"x": 1}, "data": {"x": 2}});
        let data = json!({"x": 1});
        assert_eq!(
            eval("data.x", DataAlias::EventData, &body, &data),
            Some(json!(1))
        );
        assert_eq!(
            eval("data.x", DataAlias::Literal, &body, &data),
            Some(json!(2))
        );
        assert_eq!(eval("data", DataAlias::EventData, &body, &data), Some(data));
    }

    #[test]
    fn headers_are_case_insensitive() {
        let v = json!({});
        assert_eq!(
            eval("headers.X-Clay-Table-Id", DataAlias::Literal, &v, &v),
            Some(json!("t_1"))
        );
        assert_eq!(eval("headers.missing", DataAlias::Literal, &v, &v), None);
        assert_eq!(
            eval("headers", DataAlias::Literal, &v, &v),
            Some(json!({"x-clay-table-id": "t_1"}))
        );
    }

    #[test]
    fn jsonpath_one_match_is_the_value_many_are_an_array() {
        let body = json!({"items": [{"u": "a"}, {"u": "b"}], "one": {"k": 5}});
        let d = json!({});
        let a = DataAlias::Literal;
        assert_eq!(eval("$.one.k", a, &body, &d), Some(json!(5)));
        assert_eq!(eval("$.items[*].u", a, &body, &d), Some(json!(["a", "b"])));
        assert_eq!(eval("$.nothing", a, &body, &d), None);
        assert_eq!(
            eval("$.items[?@.u == 'b'].u", a, &body, &d),
            Some(json!("b"))
        );
    }

    #[test]
    fn bad_paths_are_refused_at_compile_time() {
        let a = DataAlias::Literal;
        assert_eq!(FieldPath::compile(" ", a).unwrap_err(), PathError::Empty);
        assert!(matches!(
            FieldPath::compile("a..b", a),
            Err(PathError::EmptySegment(_))
        ));
        assert!(matches!(
            FieldPath::compile("properties.", a),
            Err(PathError::EmptySegment(_))
        ));
        assert!(matches!(
            FieldPath::compile("headers.", a),
            Err(PathError::NoHeaderName(_))
        ));
        assert!(matches!(
            FieldPath::compile("$.items[", a),
            Err(PathError::JsonPath { .. })
        ));
        assert!(matches!(
            FieldPath::compile("$.items[?match(@.u, 'a.*')]", a),
            Err(PathError::RegexFilter(_))
        ));
        assert!(matches!(
            FieldPath::compile("$.items[?search(@.u, 'a')]", a),
            Err(PathError::RegexFilter(_))
        ));
    }
}
