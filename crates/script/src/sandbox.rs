//! One QuickJS runtime and the scripts compiled in it. Owned by one pool
//! thread: QuickJS runtimes cannot move between threads.

use std::{
    cell::Cell,
    collections::HashMap,
    rc::Rc,
    sync::{Arc, Weak},
    time::Instant,
};

use rquickjs::{
    Context, Ctx, Exception, Function, Module, Object, Persistent, Runtime, Value,
    context::intrinsic,
};
use serde_json::{Map, Value as Json};

use crate::{Limits, Script, ScriptError, ScriptInput, ScriptOutcome, host};

/// What the sandbox offers: the language, `Date`, `JSON`, `RegExp`, maps
/// and sets, typed arrays and promises. No `performance` (a second clock), no
/// module loader (so `import` finds nothing), no `std`/`os` modules, no
/// timers, no I/O of any kind; `crypto` is the host's (`host.rs`).
type Intrinsics = (
    intrinsic::Date,
    intrinsic::Eval,
    intrinsic::RegExpCompiler,
    intrinsic::RegExp,
    intrinsic::Json,
    intrinsic::MapSet,
    intrinsic::TypedArrays,
    intrinsic::Promise,
);

/// A script ready to run: its own context (so one script's globals never
/// reach another's), its `main` and its frozen `vars`.
struct Compiled {
    script: Weak<Script>,
    // Persistent handles go before the context that made them: fields drop in order.
    main: Persistent<Function<'static>>,
    vars: Persistent<Object<'static>>,
    /// The prototype of every `ctx`: holds the `body` getter.
    proto: Persistent<Object<'static>>,
    context: Context,
}

/// A runtime with its compiled scripts. Scripts are compiled on first use
/// and kept until their [`Script`] is dropped (a newer revision replaced it).
pub(crate) struct Sandbox {
    // Dropped before the runtime they live in.
    compiled: HashMap<u64, Compiled>,
    runtime: Runtime,
    deadline: Rc<Cell<Option<Instant>>>,
    interrupted: Rc<Cell<bool>>,
    limits: Limits,
}

impl Sandbox {
    pub(crate) fn new(limits: Limits) -> Result<Self, ScriptError> {
        let deadline = Rc::new(Cell::new(None::<Instant>));
        let interrupted = Rc::new(Cell::new(false));
        let runtime = new_runtime(&limits, &deadline, &interrupted)?;
        Ok(Self {
            compiled: HashMap::new(),
            runtime,
            deadline,
            interrupted,
            limits,
        })
    }

    /// Compiles `script` here unless it already is; its top level runs
    /// within the CPU-time limit.
    pub(crate) fn prepare(&mut self, script: &Arc<Script>) -> Result<(), ScriptError> {
        if self.compiled.contains_key(&script.id) {
            return Ok(());
        }
        self.compiled.retain(|_, c| c.script.strong_count() > 0);
        let compiled = self.guarded(script, |sandbox| sandbox.compile(script));
        self.compiled.insert(script.id, compiled?);
        Ok(())
    }

    /// Runs `script`'s `main` on `input`.
    pub(crate) fn run(
        &mut self,
        script: &Arc<Script>,
        input: &ScriptInput,
    ) -> Result<ScriptOutcome, ScriptError> {
        self.prepare(script)?;
        self.guarded(script, |sandbox| sandbox.call(script, input))
    }

    /// Runs `f` under the CPU-time limit. After a run that was stopped or
    /// ran out of memory the runtime is replaced: whatever the script left
    /// behind (pending jobs, a heap near the limit) must not reach the next run.
    fn guarded<T>(
        &mut self,
        script: &Script,
        f: impl FnOnce(&mut Self) -> Result<T, ScriptError>,
    ) -> Result<T, ScriptError> {
        self.interrupted.set(false);
        self.deadline
            .set(Some(Instant::now() + self.limits.cpu_time));
        let result = f(self);
        self.deadline.set(None);
        let result = match result {
            Err(_) if self.interrupted.get() => Err(ScriptError::TimedOut {
                script: script.name.clone(),
                limit: self.limits.cpu_time,
            }),
            other => other,
        };
        if matches!(
            result,
            Err(ScriptError::TimedOut { .. } | ScriptError::OutOfMemory { .. })
        ) {
            self.reset();
        }
        result
    }

    fn reset(&mut self) {
        self.compiled.clear();
        match new_runtime(&self.limits, &self.deadline, &self.interrupted) {
            Ok(runtime) => self.runtime = runtime,
            Err(e) => {
                tracing::error!(error = %e, "A preprocess script runtime could not be replaced; the old one stays.");
            }
        }
    }

    fn compile(&self, script: &Arc<Script>) -> Result<Compiled, ScriptError> {
        let context =
            Context::custom::<Intrinsics>(&self.runtime).map_err(|e| ScriptError::Compile {
                script: script.name.clone(),
                line: None,
                message: e.to_string(),
            })?;
        let (main, vars, proto) = context.with(|ctx| -> Result<_, ScriptError> {
            let compile_error = |ctx: &Ctx<'_>, e: rquickjs::Error| match caught(
                ctx,
                e,
                &script.name,
                self.limits.memory_bytes,
            ) {
                ScriptError::Threw {
                    script,
                    line,
                    message,
                } => ScriptError::Compile {
                    script,
                    line,
                    message,
                },
                other => other,
            };
            host::install(&ctx).map_err(|e| compile_error(&ctx, e))?;
            // Made before the script's top level runs, so its `JSON.parse` is the engine's.
            let proto: Object = ctx
                .eval(CTX_PROTOTYPE)
                .map_err(|e| compile_error(&ctx, e))?;
            let module = Module::declare(ctx.clone(), script.name.as_str(), script.source.as_str())
                .map_err(|e| compile_error(&ctx, e))?;
            let (module, loaded) = module.eval().map_err(|e| compile_error(&ctx, e))?;
            settle(loaded.into_value()).map_err(|e| compile_error(&ctx, e))?;
            let main: Function = module.get("main").map_err(|_| ScriptError::NoMain {
                script: script.name.clone(),
            })?;
            let vars = Object::new(ctx.clone()).map_err(|e| compile_error(&ctx, e))?;
            for (name, value) in &script.vars {
                vars.set(name.as_str(), value.expose())
                    .map_err(|e| compile_error(&ctx, e))?;
            }
            freeze(&ctx, &vars).map_err(|e| compile_error(&ctx, e))?;
            Ok((
                Persistent::save(&ctx, main),
                Persistent::save(&ctx, vars),
                Persistent::save(&ctx, proto),
            ))
        })?;
        Ok(Compiled {
            script: Arc::downgrade(script),
            main,
            vars,
            proto,
            context,
        })
    }

    fn call(&self, script: &Script, input: &ScriptInput) -> Result<ScriptOutcome, ScriptError> {
        let Some(compiled) = self.compiled.get(&script.id) else {
            return Err(ScriptError::Unavailable);
        };
        let limit = self.limits.memory_bytes;
        compiled.context.with(|ctx| {
            let fail = |e: rquickjs::Error| caught(&ctx, e, &script.name, limit);
            let main = compiled.main.clone().restore(&ctx).map_err(fail)?;
            let vars = compiled.vars.clone().restore(&ctx).map_err(fail)?;
            let proto = compiled.proto.clone().restore(&ctx).map_err(fail)?;
            let arg = context_object(&ctx, &proto, vars, input).map_err(fail)?;
            let returned: Value = main.call((arg,)).map_err(fail)?;
            let value = settle(returned).map_err(fail)?;
            outcome(&ctx, value).map_err(|e| match e {
                Outcome::Js(e) => fail(e),
                Outcome::Malformed(reason) => ScriptError::Malformed {
                    script: script.name.clone(),
                    reason,
                },
            })
        })
    }
}

fn new_runtime(
    limits: &Limits,
    deadline: &Rc<Cell<Option<Instant>>>,
    interrupted: &Rc<Cell<bool>>,
) -> Result<Runtime, ScriptError> {
    let runtime = Runtime::new().map_err(|_| ScriptError::Unavailable)?;
    runtime.set_memory_limit(limits.memory_bytes);
    runtime.set_max_stack_size(MAX_STACK_BYTES);
    let deadline = Rc::clone(deadline);
    let interrupted = Rc::clone(interrupted);
    // QuickJS asks every few thousand operations; one clock read each time.
    runtime.set_interrupt_handler(Some(Box::new(move || {
        let stop = deadline.get().is_some_and(|d| Instant::now() >= d);
        if stop {
            interrupted.set(true);
        }
        stop
    })));
    Ok(runtime)
}

/// The JavaScript stack a run may use; the pool's threads have room for it
/// with a wide margin.
const MAX_STACK_BYTES: usize = 512 * 1024;

/// The prototype of `ctx`: `body` is a getter that parses `rawBody` the
/// first time it is read and keeps the value on that `ctx`, so a script
/// that reads only `rawBody` never pays for the parse.
const CTX_PROTOTYPE: &str = r#"(() => {
  const parse = JSON.parse;
  const define = Object.defineProperty;
  const proto = {};
  define(proto, "body", {
    enumerable: true,
    get() {
      let value = null;
      try { value = parse(this.rawBody); } catch (_) {}
      define(this, "body", { value, enumerable: true, writable: true, configurable: true });
      return value;
    },
  });
  return proto;
})()"#;

/// The `ctx` argument of `main`.
fn context_object<'js>(
    ctx: &Ctx<'js>,
    proto: &Object<'js>,
    vars: Object<'js>,
    input: &ScriptInput,
) -> rquickjs::Result<Object<'js>> {
    let arg = Object::new(ctx.clone())?;
    arg.set_prototype(Some(proto))?;
    arg.set("vars", vars)?;
    // `from_utf8` checks a valid body several times faster than the lossy
    // conversion does; only a body with invalid bytes takes the latter.
    let raw = match std::str::from_utf8(&input.body) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(&input.body),
    };
    arg.set("rawBody", raw.as_ref())?;
    let headers = Object::new(ctx.clone())?;
    for (name, value) in &input.headers {
        headers.set(name.to_ascii_lowercase(), value.as_str())?;
    }
    arg.set("headers", headers)?;
    Ok(arg)
}

fn freeze<'js>(ctx: &Ctx<'js>, object: &Object<'js>) -> rquickjs::Result<()> {
    let object_ctor: Object = ctx.globals().get("Object")?;
    let freeze: Function = object_ctor.get("freeze")?;
    freeze.call::<_, Value>((object.clone(),))?;
    Ok(())
}

/// Drives the job queue until `value` (a promise or not) has settled. A
/// promise that can never settle is `Error::WouldBlock`.
fn settle<'js>(value: Value<'js>) -> rquickjs::Result<Value<'js>> {
    match value.as_promise() {
        Some(promise) => promise.finish::<Value>(),
        None => Ok(value),
    }
}

enum Outcome {
    Js(rquickjs::Error),
    Malformed(String),
}

/// Most bytes of output (`JSON.stringify` of the result) a run may keep.
pub const MAX_OUTPUT_BYTES: usize = 256 * 1024;

fn outcome<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> Result<ScriptOutcome, Outcome> {
    let Some(object) = value.as_object().filter(|_| !value.is_array()) else {
        return Err(Outcome::Malformed(format!(
            "{} instead of an object with `verified`",
            type_name(&value)
        )));
    };
    let verified = object.get::<_, Value>("verified").map_err(Outcome::Js)?;
    let verified = if verified.is_undefined() {
        None
    } else {
        match verified.as_bool() {
            Some(b) => Some(b),
            None => {
                return Err(Outcome::Malformed(format!(
                    "`verified` as {} instead of a boolean",
                    type_name(&verified)
                )));
            }
        }
    };
    let text = match ctx.json_stringify(value.clone()) {
        Ok(Some(text)) => text.to_string().map_err(Outcome::Js)?,
        Ok(None) => String::from("{}"),
        Err(rquickjs::Error::Exception) => {
            let thrown = ctx.catch();
            let message = thrown
                .as_exception()
                .and_then(Exception::message)
                .unwrap_or_default();
            return Err(Outcome::Malformed(format!(
                "a result JSON cannot represent ({message})"
            )));
        }
        Err(e) => return Err(Outcome::Js(e)),
    };
    if text.len() > MAX_OUTPUT_BYTES {
        return Err(Outcome::Malformed(format!(
            "a result of {} bytes as JSON, over the limit of {MAX_OUTPUT_BYTES}",
            text.len()
        )));
    }
    let mut output: Map<String, Json> = serde_json::from_str(&text)
        .map_err(|e| Outcome::Malformed(format!("a result that is not a JSON object ({e})")))?;
    output.remove("verified");
    Ok(ScriptOutcome { verified, output })
}

fn type_name(value: &Value<'_>) -> &'static str {
    if value.is_array() {
        "an array"
    } else if value.is_undefined() {
        "undefined"
    } else if value.is_null() {
        "null"
    } else {
        match value.type_of() {
            rquickjs::Type::Bool => "a boolean",
            rquickjs::Type::Int | rquickjs::Type::Float => "a number",
            rquickjs::Type::String => "a string",
            rquickjs::Type::Function | rquickjs::Type::Constructor => "a function",
            rquickjs::Type::BigInt => "a bigint",
            rquickjs::Type::Symbol => "a symbol",
            _ => "a value",
        }
    }
}

/// Turns an rquickjs error (the pending exception, if any) into the
/// script's error, with the line QuickJS put in the stack.
fn caught<'js>(ctx: &Ctx<'js>, error: rquickjs::Error, script: &str, memory: usize) -> ScriptError {
    let (message, stack) = match error {
        rquickjs::Error::Exception => {
            let thrown = ctx.catch();
            match thrown.as_exception() {
                Some(ex) => (describe_exception(ex), ex.stack().unwrap_or_default()),
                None => (describe_value(ctx, &thrown), String::new()),
            }
        }
        rquickjs::Error::Allocation => (String::from("out of memory"), String::new()),
        rquickjs::Error::WouldBlock => {
            return ScriptError::Malformed {
                script: script.to_owned(),
                reason: String::from("a promise that can never settle (nothing is left to run)"),
            };
        }
        other => (other.to_string(), String::new()),
    };
    if message.contains("out of memory") {
        return ScriptError::OutOfMemory {
            script: script.to_owned(),
            limit: memory,
        };
    }
    let line = line_in(&stack, script).or_else(|| line_in(&message, script));
    ScriptError::Threw {
        script: script.to_owned(),
        line,
        message,
    }
}

fn describe_exception(ex: &Exception<'_>) -> String {
    let name: Option<String> = ex.get("name").ok();
    let message = ex.message().unwrap_or_default();
    match name {
        Some(name) if !name.is_empty() => format!("{name}: {message}"),
        _ => message,
    }
}

fn describe_value<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> String {
    match ctx.json_stringify(value.clone()) {
        Ok(Some(s)) => s.to_string().unwrap_or_else(|_| String::from("a value")),
        _ => {
            ctx.catch();
            String::from(type_name(value))
        }
    }
}

/// The first line number QuickJS wrote after the script's name
/// (`at main (stripe/production:7:11)`).
pub(crate) fn line_in(text: &str, script: &str) -> Option<u32> {
    let mut rest = text;
    while let Some(at) = rest.find(script) {
        rest = &rest[at + script.len()..];
        if let Some(after) = rest.strip_prefix(':') {
            let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(line) = digits.parse() {
                return Some(line);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::line_in;

    #[test]
    fn the_line_is_read_after_the_scripts_name() {
        assert_eq!(line_in("    at main (s/e:7:11)\n", "s/e"), Some(7));
        assert_eq!(line_in("    at s/e:12:3\n", "s/e"), Some(12));
        assert_eq!(line_in("at f (other:3:1)\n at s/e:9", "s/e"), Some(9));
        assert_eq!(line_in("    at <anonymous>\n", "s/e"), None);
        assert_eq!(line_in("s/e s/e:x s/e:4", "s/e"), Some(4));
    }
}
