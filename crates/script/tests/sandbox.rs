//! The pool through its public API: results, errors with lines, the limits,
//! the sandbox's missing globals, and a property over any input.

use std::{sync::Arc, time::Duration};

use proptest::prelude::*;
use serde_json::json;
use tributary_core::Secret;
use tributary_script::{Limits, Script, ScriptError, ScriptInput, ScriptPool};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn pool() -> ScriptPool {
    ScriptPool::new(Limits {
        cpu_time: Duration::from_millis(200),
        ..Limits::default()
    })
}

fn script(source: &str) -> Arc<Script> {
    Script::new(
        "src/production",
        source,
        vec![("SECRET".to_owned(), Secret::new("whsec_1"))],
    )
}

fn input(body: &str, headers: &[(&str, &str)]) -> ScriptInput {
    ScriptInput {
        body: body.as_bytes().to_vec(),
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

const VERIFY: &str = r#"
export function main(ctx) {
  const expected = crypto.hmacSha256Hex(ctx.vars.SECRET, ctx.rawBody);
  const presented = ctx.headers["x-signature"] ?? "";
  return { verified: crypto.timingSafeEqual(expected, presented), type: ctx.body.type };
}
"#;

#[test]
fn a_verification_script_checks_the_hmac_and_returns_its_output() {
    let pool = pool();
    let script = script(VERIFY);
    let body = r#"{"type":"order.paid"}"#;
    // HMAC-SHA256("whsec_1", body), computed independently of the host function.
    let good = {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"whsec_1").unwrap();
        mac.update(body.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    rt().block_on(async {
        let ok = pool
            .run(&script, input(body, &[("X-Signature", &good)]))
            .await
            .unwrap();
        assert_eq!(ok.verified, Some(true));
        assert_eq!(json!(ok.output), json!({"type": "order.paid"}));
        let bad = pool
            .run(&script, input(body, &[("x-signature", "00")]))
            .await
            .unwrap();
        assert_eq!(bad.verified, Some(false));
    });
}

#[test]
fn async_main_is_awaited_and_a_missing_verified_is_none() {
    let pool = pool();
    let script = script(
        "export async function main(ctx) { const n = await Promise.resolve(ctx.body.n); return { n: n + 1 }; }",
    );
    let out = rt()
        .block_on(pool.run(&script, input(r#"{"n":1}"#, &[])))
        .unwrap();
    assert_eq!(out.verified, None);
    assert_eq!(json!(out.output), json!({"n": 2}));
}

#[test]
fn a_body_that_is_not_json_is_null_and_raw_body_is_the_text() {
    let pool = pool();
    let script = script(
        "export function main(ctx) { return { verified: ctx.body === null, raw: ctx.rawBody }; }",
    );
    let out = rt()
        .block_on(pool.run(&script, input("a=1&b=2", &[])))
        .unwrap();
    assert_eq!(out.verified, Some(true));
    assert_eq!(out.output["raw"], "a=1&b=2");
}

#[test]
fn the_body_is_parsed_once_when_first_read_and_stays_the_same_object() {
    let pool = pool();
    let script = script(
        "export function main(ctx) {\n\
           const before = Object.keys(ctx).includes('body');\n\
           const first = ctx.body;\n\
           first.seen = true;\n\
           return { verified: ctx.body === first && ctx.body.seen, before, after: Object.keys(ctx).includes('body') };\n\
         }",
    );
    let out = rt()
        .block_on(pool.run(&script, input(r#"{"type":"x"}"#, &[])))
        .unwrap();
    assert_eq!(out.verified, Some(true), "{:?}", out.output);
    assert_eq!(out.output["before"], false, "not parsed before it is read");
    assert_eq!(out.output["after"], true, "kept on ctx once read");
}

#[test]
fn a_throw_names_the_script_and_the_line() {
    let pool = pool();
    let script = script(
        "export function main(ctx) {\n  const x = 1;\n  throw new Error('bad payload');\n}\n",
    );
    let err = rt()
        .block_on(pool.run(&script, input("{}", &[])))
        .unwrap_err();
    match &err {
        ScriptError::Threw {
            script,
            line,
            message,
        } => {
            assert_eq!(script, "src/production");
            assert_eq!(*line, Some(3), "{err}");
            assert!(message.contains("bad payload"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().contains("src/production threw at line 3"),
        "{err}"
    );
}

#[test]
fn a_syntax_error_names_the_line_and_a_missing_main_is_refused() {
    let pool = pool();
    let broken = script("export function main(ctx) {\n  return {;\n}\n");
    let err = rt().block_on(pool.check(&broken)).unwrap_err();
    assert!(
        matches!(err, ScriptError::Compile { line: Some(2), .. }),
        "{err:?}"
    );
    let no_main = script("export function other() { return {}; }");
    let err = rt().block_on(pool.check(&no_main)).unwrap_err();
    assert!(matches!(err, ScriptError::NoMain { .. }), "{err:?}");
}

#[test]
fn the_synchronous_check_names_the_line_refuses_no_main_and_stops_a_looping_top_level() {
    assert_eq!(tributary_script::check("src/production", VERIFY), Ok(()));
    let err = tributary_script::check(
        "src/production",
        "export function main(ctx) {\n  return {;\n}\n",
    )
    .unwrap_err();
    assert!(
        matches!(&err, ScriptError::Compile { script, line: Some(2), .. } if script == "src/production"),
        "{err:?}"
    );
    let err = tributary_script::check("src/production", "export const main = 1;").unwrap_err();
    assert!(matches!(err, ScriptError::NoMain { .. }), "{err:?}");
    let err = tributary_script::check(
        "src/production",
        "while (true) {}\nexport function main() {}",
    )
    .unwrap_err();
    assert!(matches!(err, ScriptError::TimedOut { .. }), "{err:?}");
}

#[test]
fn an_infinite_loop_is_stopped_and_the_thread_serves_the_next_run() {
    let pool = ScriptPool::new(Limits {
        cpu_time: Duration::from_millis(50),
        threads: 1,
        ..Limits::default()
    });
    let spin = script("export function main(ctx) { while (true) {} }");
    let ok = script("export function main(ctx) { return { verified: true }; }");
    let looping_promise = script("export async function main(ctx) { for (;;) { await null; } }");
    rt().block_on(async {
        let err = pool.run(&spin, input("{}", &[])).await.unwrap_err();
        assert!(matches!(err, ScriptError::TimedOut { .. }), "{err:?}");
        let err = pool
            .run(&looping_promise, input("{}", &[]))
            .await
            .unwrap_err();
        assert!(matches!(err, ScriptError::TimedOut { .. }), "{err:?}");
        let out = pool.run(&ok, input("{}", &[])).await.unwrap();
        assert_eq!(out.verified, Some(true));
    });
}

#[test]
fn running_out_of_memory_is_an_error_not_a_crash() {
    let pool = ScriptPool::new(Limits {
        memory_bytes: 8 * 1024 * 1024,
        cpu_time: Duration::from_secs(5),
        threads: 1,
        ..Limits::default()
    });
    let hog = script(
        "export function main(ctx) { const a = []; for (;;) { a.push('x'.repeat(1024) + a.length); } }",
    );
    let ok = script("export function main(ctx) { return { verified: true }; }");
    rt().block_on(async {
        let err = pool.run(&hog, input("{}", &[])).await.unwrap_err();
        assert!(matches!(err, ScriptError::OutOfMemory { .. }), "{err:?}");
        assert!(pool.run(&ok, input("{}", &[])).await.is_ok());
    });
}

#[test]
fn malformed_results_are_named() {
    let pool = pool();
    rt().block_on(async {
        for (source, expect) in [
            ("export function main() { return 5; }", "a number"),
            ("export function main() { return [1]; }", "an array"),
            (
                "export function main() { return { verified: 'yes' }; }",
                "`verified` as a string",
            ),
            (
                "export function main() { return { verified: true, n: 1n }; }",
                "JSON cannot represent",
            ),
            (
                "export function main() { return new Promise(() => {}); }",
                "never settle",
            ),
        ] {
            let err = pool
                .run(&script(source), input("{}", &[]))
                .await
                .unwrap_err();
            assert!(
                matches!(&err, ScriptError::Malformed { reason, .. } if reason.contains(expect)),
                "{source}: {err:?}"
            );
        }
    });
}

#[test]
fn one_scripts_globals_do_not_reach_another() {
    let pool = ScriptPool::new(Limits {
        threads: 1,
        ..Limits::default()
    });
    let polluter = Script::new(
        "a/production",
        "export function main() { globalThis.leak = 1; JSON.parse = () => 7; return { verified: true }; }",
        vec![],
    );
    let reader = Script::new(
        "b/production",
        "export function main() { return { verified: typeof leak === 'undefined' && JSON.parse('1') === 1 }; }",
        vec![],
    );
    rt().block_on(async {
        pool.run(&polluter, input("{}", &[])).await.unwrap();
        let out = pool.run(&reader, input("{}", &[])).await.unwrap();
        assert_eq!(out.verified, Some(true));
    });
}

#[test]
fn a_full_queue_is_overloaded() {
    let pool = ScriptPool::new(Limits {
        cpu_time: Duration::from_millis(300),
        threads: 1,
        queue: 1,
        ..Limits::default()
    });
    let spin = script("export function main(ctx) { while (true) {} }");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = Arc::new(pool);
        let mut runs = Vec::new();
        for _ in 0..6 {
            let pool = Arc::clone(&pool);
            let spin = Arc::clone(&spin);
            runs.push(tokio::spawn(async move {
                pool.run(&spin, ScriptInput::default()).await
            }));
        }
        let mut overloaded = 0;
        for run in runs {
            if matches!(run.await.unwrap(), Err(ScriptError::Overloaded)) {
                overloaded += 1;
            }
        }
        assert!(
            overloaded >= 1,
            "six runs on one thread with a queue of one"
        );
    });
}

/// What a hostile script can find: nothing to reach outside.
const PROBE: &str = r#"
export function main(ctx) {
  const names = ["require", "std", "os", "fetch", "process", "setTimeout", "setInterval",
                 "XMLHttpRequest", "performance", "console", "Deno", "Bun", "scriptArgs", "print"];
  const found = names.filter((n) => typeof globalThis[n] !== "undefined");
  return { verified: found.length === 0, found, headers: Object.keys(ctx.headers).length,
           date: typeof Date.now(), body: ctx.body === null ? "null" : typeof ctx.body };
}
"#;

#[test]
fn the_sandbox_has_no_way_out() {
    let pool = pool();
    let out = rt()
        .block_on(pool.run(&script(PROBE), input("{}", &[])))
        .unwrap();
    assert_eq!(out.output["found"], json!([]));
    assert_eq!(out.verified, Some(true));
    assert_eq!(out.output["date"], "number");
    // Importing anything fails: there is no module loader.
    let importer = script("import * as std from 'std';\nexport function main() { return {}; }");
    let err = rt().block_on(pool.check(&importer)).unwrap_err();
    assert!(matches!(err, ScriptError::Compile { .. }), "{err:?}");
    let dynamic =
        script("export async function main() { await import('os'); return { verified: true }; }");
    let err = rt()
        .block_on(pool.run(&dynamic, input("{}", &[])))
        .unwrap_err();
    assert!(matches!(err, ScriptError::Threw { .. }), "{err:?}");
}

/// Any JSON, leaning to objects with `verified` of any type.
fn returned_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        ".{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![Just("verified".to_owned()), "[a-z]{1,3}"],
                inner,
                0..5,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// No body bytes and no headers make a run panic or find a way out:
    /// the probe's answer is always a result, with nothing found.
    #[test]
    fn any_input_runs_in_the_sandbox(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        headers in proptest::collection::vec((".{0,16}", ".{0,32}"), 0..8),
        json_body in proptest::option::of("\\{\"[a-z]{1,4}\":[0-9\\[\\]{}\",a-z]{0,24}\\}"),
    ) {
        let pool = pool();
        let probe = script(PROBE);
        let body = json_body.map(String::into_bytes).unwrap_or(body);
        let out = rt().block_on(pool.run(&probe, ScriptInput { body, headers })).unwrap();
        prop_assert_eq!(&out.output["found"], &json!([]));
        prop_assert_eq!(out.verified, Some(true));
    }

    /// Whatever JSON `main` returns is a result (an object whose `verified`
    /// is a boolean or missing) or a malformed result, never a panic.
    #[test]
    fn any_json_returned_is_a_result_or_malformed(returned in returned_json()) {
        let pool = pool();
        let echo = script("export function main(ctx) { return ctx.body; }");
        let text = returned.to_string();
        match rt().block_on(pool.run(&echo, input(&text, &[]))) {
            Ok(out) => {
                let object = returned.as_object();
                prop_assert!(object.is_some(), "{text}");
                let verified = object.and_then(|o| o.get("verified"));
                prop_assert_eq!(out.verified, verified.and_then(serde_json::Value::as_bool));
                prop_assert!(!out.output.contains_key("verified"));
            }
            Err(ScriptError::Malformed { .. }) => {}
            Err(other) => prop_assert!(false, "{other:?} for {text}"),
        }
    }
}
