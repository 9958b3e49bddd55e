//! A JSON Schema checker for the subset of keywords our extraction of the
//! product's request schemas uses (fixtures/knock-api/request-schemas.json,
//! docs/mapping.md "Reserved attribute names"): `type`, `enum`, `format`
//! (`date-time`, `uuid`), `properties`, `required`, `additionalProperties`,
//! `items`, `anyOf`, `allOf` and local `$ref`s. Written apart from the
//! engine's own checks (`tributary_core::reserved`) so the two can be held
//! against each other. Any other keyword panics: the fixture must not grow
//! one this checker would silently ignore.

#![allow(unreachable_pub)]

use serde_json::{Map, Value};

/// The extracted schemas, by name.
pub struct Schemas {
    defs: Map<String, Value>,
}

impl Schemas {
    pub fn load() -> Self {
        let text = include_str!("../../../../fixtures/knock-api/request-schemas.json");
        let root: Value = serde_json::from_str(text).expect("the fixture is JSON");
        let defs = root["$defs"].as_object().cloned().expect("$defs");
        Self { defs }
    }

    /// `Ok` when `value` is valid against schema `name`; else the JSON
    /// pointer of the first place it is not, and why.
    pub fn check(&self, name: &str, value: &Value) -> Result<(), String> {
        let schema = self
            .defs
            .get(name)
            .unwrap_or_else(|| panic!("no schema {name}"));
        self.valid(schema, value, "")
    }

    fn valid(&self, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
        let Some(schema) = schema.as_object() else {
            panic!("schema at {at} is not an object");
        };
        for (keyword, arg) in schema {
            match keyword.as_str() {
                "$ref" => {
                    let name = arg
                        .as_str()
                        .and_then(|r| r.strip_prefix("#/$defs/"))
                        .unwrap_or_else(|| panic!("unsupported $ref {arg}"));
                    let target = self
                        .defs
                        .get(name)
                        .unwrap_or_else(|| panic!("dangling $ref {name}"));
                    self.valid(target, v, at)?;
                }
                "type" => {
                    let types: Vec<&str> = match arg {
                        Value::String(t) => vec![t.as_str()],
                        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                        _ => panic!("bad type at {at}"),
                    };
                    if !types.iter().any(|t| has_type(v, t)) {
                        return Err(format!("{at}: {v} is not of type {types:?}"));
                    }
                }
                "enum" => {
                    if !arg.as_array().is_some_and(|e| e.contains(v)) {
                        return Err(format!("{at}: {v} is not one of {arg}"));
                    }
                }
                "format" => {
                    if let Some(s) = v.as_str() {
                        let ok = match arg.as_str() {
                            Some("date-time") => date_time(s),
                            Some("uuid") => uuid(s),
                            other => panic!("unsupported format {other:?}"),
                        };
                        if !ok {
                            return Err(format!("{at}: {s:?} is not a {arg}"));
                        }
                    }
                }
                "required" => {
                    if let Some(o) = v.as_object() {
                        for k in arg.as_array().into_iter().flatten() {
                            let k = k.as_str().unwrap_or_default();
                            if !o.contains_key(k) {
                                return Err(format!("{at}: `{k}` is required"));
                            }
                        }
                    }
                }
                "properties" => {
                    if let (Some(o), Some(props)) = (v.as_object(), arg.as_object()) {
                        for (k, sub) in props {
                            if let Some(x) = o.get(k) {
                                self.valid(sub, x, &format!("{at}/{k}"))?;
                            }
                        }
                    }
                }
                "additionalProperties" => {
                    if let Some(o) = v.as_object() {
                        let listed = schema.get("properties").and_then(Value::as_object);
                        for (k, x) in o {
                            if listed.is_some_and(|p| p.contains_key(k)) {
                                continue;
                            }
                            match arg {
                                Value::Bool(true) => {}
                                Value::Bool(false) => {
                                    return Err(format!("{at}: `{k}` is not allowed"));
                                }
                                sub => self.valid(sub, x, &format!("{at}/{k}"))?,
                            }
                        }
                    }
                }
                "items" => {
                    if let Some(items) = v.as_array() {
                        for (i, x) in items.iter().enumerate() {
                            self.valid(arg, x, &format!("{at}/{i}"))?;
                        }
                    }
                }
                "anyOf" => {
                    let alternatives = arg.as_array().expect("anyOf is a list");
                    if !alternatives
                        .iter()
                        .any(|alt| self.valid(alt, v, at).is_ok())
                    {
                        return Err(format!("{at}: {v} matches no alternative"));
                    }
                }
                "allOf" => {
                    for sub in arg.as_array().expect("allOf is a list") {
                        self.valid(sub, v, at)?;
                    }
                }
                other => panic!("unsupported keyword `{other}` at {at}"),
            }
        }
        Ok(())
    }
}

fn has_type(v: &Value, t: &str) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        other => panic!("unsupported type {other}"),
    }
}

/// RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)`,
/// checked by hand (field ranges included, leap seconds not).
fn date_time(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r)
            .filter(|d| d.iter().all(u8::is_ascii_digit))
            .map(|d| d.iter().fold(0u32, |n, c| n * 10 + u32::from(c - b'0')))
    };
    let (Some(_year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        digits(0..4),
        digits(5..7),
        digits(8..10),
        digits(11..13),
        digits(14..16),
        digits(17..19),
    ) else {
        return false;
    };
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return false;
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return false;
    }
    if second > 59 {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    match rest.as_bytes() {
        [b'Z'] => true,
        [sign, h1, h2, b':', m1, m2] if *sign == b'+' || *sign == b'-' => {
            [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit())
                && (u32::from(h1 - b'0') * 10 + u32::from(h2 - b'0')) <= 23
                && (u32::from(m1 - b'0') * 10 + u32::from(m2 - b'0')) <= 59
        }
        _ => false,
    }
}

fn uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|c| c.is_ascii_hexdigit()))
}
