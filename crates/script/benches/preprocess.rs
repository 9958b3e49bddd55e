//! What a typical verification script costs a request: HMAC-SHA256 of a
//! 1 KB body through the host function, a constant-time compare and two
//! output keys (`verification_script`; `verification_only` answers
//! `verified` alone and never reads `ctx.body`), run through the pool (queue, thread hand-off, `ctx` built,
//! `main` called, result read back) from an async caller, as the pipeline
//! runs it. Beside it: the pool's round trip with a script that does
//! nothing (the fixed cost of a script at all), and the same HMAC and
//! compare in Rust alone (what the declarative `hmac-sha256` scheme pays).
//!
//! Run with `cargo bench -p tributary-script`; divan prints the time per run.

use std::sync::Arc;

use divan::{Bencher, black_box};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tributary_core::Secret;
use tributary_script::{Limits, Script, ScriptInput, ScriptPool};

fn main() {
    divan::main();
}

const SECRET: &str = "whsec_bench_secret_0123456789";

const VERIFY: &str = r#"
export function main(ctx) {
  const expected = crypto.hmacSha256Hex(ctx.vars.SECRET, ctx.rawBody);
  const verified = crypto.timingSafeEqual(expected, ctx.headers["x-signature"] ?? "");
  return { verified, kind: ctx.body.type, key: ctx.body.id };
}
"#;

/// The same check returning `verified` alone: the body is never read as JSON.
const VERIFY_ONLY: &str = r#"
export function main(ctx) {
  const expected = crypto.hmacSha256Hex(ctx.vars.SECRET, ctx.rawBody);
  return { verified: crypto.timingSafeEqual(expected, ctx.headers["x-signature"] ?? "") };
}
"#;

/// A webhook body of about 1 KB, with a dozen headers, as a platform sends them.
fn input() -> ScriptInput {
    let padding = "x".repeat(820);
    let body = format!(
        r#"{{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","type":"invoice.paid","created":1686089970,"data":{{"object":{{"id":"in_1","customer":"cus_9","amount_paid":2000,"note":"{padding}"}}}}}}"#
    );
    let signature = hex::encode(hmac(body.as_bytes()));
    let mut headers: Vec<(String, String)> = (0..10)
        .map(|i| (format!("x-header-{i}"), format!("value-{i}")))
        .collect();
    headers.push(("content-type".into(), "application/json".into()));
    headers.push(("x-signature".into(), signature));
    ScriptInput {
        body: body.into_bytes(),
        headers,
    }
}

fn hmac(body: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize().into_bytes().into()
}

fn run(bencher: Bencher, source: &str) {
    let pool = ScriptPool::new(Limits::default());
    let script = Script::new(
        "bench/production",
        source,
        vec![("SECRET".into(), Secret::new(SECRET))],
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let input = input();
    // Compiled on the threads before timing starts.
    for _ in 0..64 {
        rt.block_on(pool.run(&script, input.clone())).unwrap();
    }
    bencher
        .with_inputs(|| (Arc::clone(&script), input.clone()))
        .bench_local_values(|(script, input)| {
            let outcome = rt.block_on(pool.run(&script, input)).unwrap();
            black_box(outcome)
        });
}

/// The typical verification script, through the pool.
#[divan::bench]
fn verification_script(bencher: Bencher) {
    run(bencher, VERIFY);
}

/// The check alone, answering `verified` only.
#[divan::bench]
fn verification_only(bencher: Bencher) {
    run(bencher, VERIFY_ONLY);
}

/// Runs in flight at once in [`verification_only_64_at_once`].
const IN_FLIGHT: usize = 64;

/// 64 runs of the check in flight at once, as a loaded server queues them,
/// all answered: the time per run here is the pool's throughput on this
/// machine's cores (divan's items per second), hand-offs included.
#[divan::bench(counters = [divan::counter::ItemsCount::new(IN_FLIGHT)])]
fn verification_only_64_at_once(bencher: Bencher) {
    let pool = Arc::new(ScriptPool::new(Limits::default()));
    let script = Script::new(
        "bench/production",
        VERIFY_ONLY,
        vec![("SECRET".into(), Secret::new(SECRET))],
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let input = input();
    for _ in 0..64 {
        rt.block_on(pool.run(&script, input.clone())).unwrap();
    }
    bencher
        .with_inputs(|| vec![input.clone(); IN_FLIGHT])
        .bench_local_values(|inputs| {
            rt.block_on(async {
                let mut runs = tokio::task::JoinSet::new();
                for input in inputs {
                    let (pool, script) = (Arc::clone(&pool), Arc::clone(&script));
                    runs.spawn(async move { pool.run(&script, input).await });
                }
                while let Some(outcome) = runs.join_next().await {
                    black_box(outcome.unwrap().unwrap());
                }
            });
        });
}

/// A script that only answers `verified: true`: the fixed cost.
#[divan::bench]
fn empty_script(bencher: Bencher) {
    run(
        bencher,
        "export function main() { return { verified: true }; }",
    );
}

/// The same check in Rust alone, as the `hmac-sha256` scheme does it.
#[divan::bench]
fn hmac_in_rust(bencher: Bencher) {
    let input = input();
    let presented = input.headers.last().unwrap().1.clone();
    bencher.bench_local(|| {
        let expected = hex::encode(hmac(black_box(&input.body)));
        black_box(bool::from(expected.as_bytes().ct_eq(presented.as_bytes())))
    });
}
