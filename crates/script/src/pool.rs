//! The threads that own the QuickJS runtimes, and the bounded queue to them.

use std::sync::{
    Arc, Mutex, OnceLock, PoisonError,
    mpsc::{Receiver, SyncSender, TrySendError, sync_channel},
};

use tokio::sync::oneshot;

use crate::{Limits, Script, ScriptError, ScriptInput, ScriptOutcome, sandbox::Sandbox};

enum Work {
    Run(ScriptInput),
    Check,
}

struct Job {
    script: Arc<Script>,
    work: Work,
    reply: oneshot::Sender<Result<ScriptOutcome, ScriptError>>,
}

/// A few threads, each owning a QuickJS runtime, fed by one bounded queue.
/// The threads start with the first run, so a process without scripts has
/// none; they end when the pool is dropped.
pub struct ScriptPool {
    limits: Limits,
    queue: OnceLock<Result<SyncSender<Job>, ScriptError>>,
}

impl ScriptPool {
    /// A pool held to `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            queue: OnceLock::new(),
        }
    }

    /// The limits runs are held to.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Runs `script` on `input` on a pool thread. Waits for the result
    /// without blocking the caller's thread.
    pub async fn run(
        &self,
        script: &Arc<Script>,
        input: ScriptInput,
    ) -> Result<ScriptOutcome, ScriptError> {
        self.send(script, Work::Run(input)).await
    }

    /// Compiles `script` and runs its top level, to tell whether it loads
    /// and exports `main`; nothing is called.
    pub async fn check(&self, script: &Arc<Script>) -> Result<(), ScriptError> {
        self.send(script, Work::Check).await.map(|_| ())
    }

    async fn send(&self, script: &Arc<Script>, work: Work) -> Result<ScriptOutcome, ScriptError> {
        let queue = self
            .queue
            .get_or_init(|| start(self.limits))
            .as_ref()
            .map_err(Clone::clone)?;
        let (reply, answer) = oneshot::channel();
        let job = Job {
            script: Arc::clone(script),
            work,
            reply,
        };
        match queue.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(ScriptError::Overloaded),
            Err(TrySendError::Disconnected(_)) => return Err(ScriptError::Unavailable),
        }
        answer.await.unwrap_or(Err(ScriptError::Unavailable))
    }
}

fn start(limits: Limits) -> Result<SyncSender<Job>, ScriptError> {
    let (sender, receiver) = sync_channel(limits.queue.max(1));
    let receiver = Arc::new(Mutex::new(receiver));
    let mut started = 0;
    for n in 0..limits.threads.max(1) {
        let receiver = Arc::clone(&receiver);
        let spawned = std::thread::Builder::new()
            .name(format!("script-{n}"))
            .stack_size(THREAD_STACK_BYTES)
            .spawn(move || serve(limits, &receiver));
        match spawned {
            Ok(_) => started += 1,
            Err(e) => tracing::error!(error = %e, "A preprocess script thread could not start."),
        }
    }
    if started == 0 {
        return Err(ScriptError::Unavailable);
    }
    Ok(sender)
}

/// Room for QuickJS's own stack limit and the Rust frames around it.
const THREAD_STACK_BYTES: usize = 4 * 1024 * 1024;

fn serve(limits: Limits, receiver: &Mutex<Receiver<Job>>) {
    let mut sandbox = match Sandbox::new(limits) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "A preprocess script runtime could not be made.");
            return;
        }
    };
    loop {
        let job = {
            let receiver = receiver.lock().unwrap_or_else(PoisonError::into_inner);
            receiver.recv()
        };
        let Ok(job) = job else {
            return;
        };
        let result = match &job.work {
            Work::Run(input) => sandbox.run(&job.script, input),
            Work::Check => sandbox.prepare(&job.script).map(|()| ScriptOutcome {
                verified: None,
                output: serde_json::Map::new(),
            }),
        };
        // The caller may have gone (its request was cancelled): nothing to do.
        let _ = job.reply.send(result);
    }
}
