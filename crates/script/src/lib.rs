//! Preprocess scripts (docs/preprocess-scripts.md): one JavaScript module per
//! source environment, exporting `main(ctx)`, run on every delivery before the
//! adapter parses it. `main` gets `ctx.vars` (the environment's configured
//! values), `ctx.body` (parsed JSON or `null`), `ctx.rawBody` and
//! `ctx.headers` (lowercase names), and returns `{ verified: boolean, ... }`;
//! the other keys are the event's preprocess output.
//!
//! QuickJS (through rquickjs) runs the scripts in a sandbox: no file system,
//! network, process, module loader or timers, a memory limit per runtime and
//! a CPU-time limit per run. QuickJS runtimes cannot change threads, so a
//! [`ScriptPool`] owns a few threads, each with its own runtime in which it
//! compiles each [`Script`] once, on first use; requests reach them over a
//! bounded queue and never block the async runtime's threads.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tributary_script::ScriptError> {
//! use tributary_core::Secret;
//! use tributary_script::{Limits, Script, ScriptInput, ScriptPool};
//!
//! let pool = ScriptPool::new(Limits::default());
//! let script = Script::new(
//!     "stripe/production",
//!     r#"export function main(ctx) {
//!          const expected = crypto.hmacSha256Hex(ctx.vars.SECRET, ctx.rawBody);
//!          const verified = crypto.timingSafeEqual(expected, ctx.headers["x-signature"] ?? "");
//!          return { verified, kind: ctx.body?.type };
//!        }"#,
//!     vec![("SECRET".to_owned(), Secret::new("s3cret"))],
//! );
//! let input = ScriptInput {
//!     body: br#"{"type":"charge.succeeded"}"#.to_vec(),
//!     headers: vec![("x-signature".to_owned(), "wrong".to_owned())],
//! };
//! let outcome = pool.run(&script, input).await?;
//! assert_eq!(outcome.verified, Some(false));
//! assert_eq!(outcome.output["kind"], "charge.succeeded");
//! # Ok(()) }
//! ```

mod error;
mod host;
mod pool;
mod sandbox;

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

pub use error::ScriptError;
pub use pool::ScriptPool;
pub use sandbox::MAX_OUTPUT_BYTES;
use serde_json::{Map, Value};
use tributary_core::Secret;

/// One source environment's script, with the values it sees as `ctx.vars`.
/// Made once per configuration revision; each pool thread compiles it the
/// first time it runs it and forgets it once every `Arc` is dropped.
pub struct Script {
    id: u64,
    name: String,
    source: String,
    vars: Vec<(String, Secret)>,
}

impl Script {
    /// A script named `name` (`source/environment`: errors and stack
    /// lines carry it) with module text `source`.
    pub fn new(
        name: impl Into<String>,
        source: impl Into<String>,
        vars: Vec<(String, Secret)>,
    ) -> Arc<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Arc::new(Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            name: name.into(),
            source: source.into(),
            vars,
        })
    }

    /// `source/environment`.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The source may hold literals an operator considers private, and
        // the vars are secrets: only the name is printed.
        f.debug_struct("Script").field("name", &self.name).finish()
    }
}

/// Compiles `source` as the script `name` (`source/environment`) and runs
/// its top level, on the calling thread with its own runtime held to the
/// default limits: whether the script loads and exports `main`. For a
/// configuration loaded before any async runtime runs; on one, use
/// [`ScriptPool::check`], which leaves the caller's thread free.
pub fn check(name: &str, source: &str) -> Result<(), ScriptError> {
    let script = Script::new(name, source, Vec::new());
    sandbox::Sandbox::new(Limits::default())?.prepare(&script)
}

/// What a script is given about one request.
#[derive(Clone, Debug, Default)]
pub struct ScriptInput {
    /// The body as received (after decompression).
    pub body: Vec<u8>,
    /// The headers; names are lowercased for the script.
    pub headers: Vec<(String, String)>,
}

/// What `main` returned.
#[derive(Clone, Debug, PartialEq)]
pub struct ScriptOutcome {
    /// `verified`, when the result had one.
    pub verified: Option<bool>,
    /// Every other key of the result (the event's preprocess output).
    pub output: Map<String, Value>,
}

/// The limits every run is held to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// CPU time one run (loading a script included) may take before it is stopped.
    pub cpu_time: Duration,
    /// Bytes one runtime (one pool thread, all its scripts) may allocate.
    pub memory_bytes: usize,
    /// Threads, each with its own runtime.
    pub threads: usize,
    /// Runs waiting for a thread at most; beyond it a run is refused as overloaded.
    pub queue: usize,
}

/// Default [`Limits::cpu_time`].
pub const DEFAULT_CPU_TIME: Duration = Duration::from_millis(50);
/// Default [`Limits::memory_bytes`]: 32 MiB.
pub const DEFAULT_MEMORY_BYTES: usize = 32 * 1024 * 1024;
/// Default [`Limits::threads`].
pub const DEFAULT_THREADS: usize = 2;
/// Default [`Limits::queue`].
pub const DEFAULT_QUEUE: usize = 1_024;

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpu_time: DEFAULT_CPU_TIME,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            threads: DEFAULT_THREADS,
            queue: DEFAULT_QUEUE,
        }
    }
}
