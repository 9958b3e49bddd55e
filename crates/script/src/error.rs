//! Why a preprocess script gave no result.

use std::time::Duration;

/// A script run that gave no usable result. Every variant but the pool's own
/// (`Overloaded`, `Unavailable`) names the script (`source/environment`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    /// The script does not compile, or its top level threw while loading.
    #[error("preprocess script {script} does not load{}: {message}", at_line(*line))]
    Compile {
        /// `source/environment`.
        script: String,
        /// The line QuickJS reported, when it did.
        line: Option<u32>,
        /// QuickJS's message.
        message: String,
    },
    /// The script exports no `main` function.
    #[error("preprocess script {script} does not export a function `main`")]
    NoMain {
        /// `source/environment`.
        script: String,
    },
    /// `main` threw, or the promise it returned was rejected.
    #[error("preprocess script {script} threw{}: {message}", at_line(*line))]
    Threw {
        /// `source/environment`.
        script: String,
        /// The line QuickJS reported, when it did.
        line: Option<u32>,
        /// The exception's message.
        message: String,
    },
    /// The run used more CPU time than allowed and was stopped.
    #[error("preprocess script {script} ran longer than {} ms and was stopped", limit.as_millis())]
    TimedOut {
        /// `source/environment`.
        script: String,
        /// The limit.
        limit: Duration,
    },
    /// The run allocated past the runtime's memory limit.
    #[error("preprocess script {script} ran out of memory (limit {limit} bytes)")]
    OutOfMemory {
        /// `source/environment`.
        script: String,
        /// The limit.
        limit: usize,
    },
    /// `main` returned something that is not a result object, or a promise
    /// that can never settle.
    #[error("preprocess script {script} returned {reason}")]
    Malformed {
        /// `source/environment`.
        script: String,
        /// What was wrong.
        reason: String,
    },
    /// Every script thread is busy and the queue is full: try again later.
    #[error("the preprocess script queue is full")]
    Overloaded,
    /// The script threads are gone (the process is shutting down).
    #[error("the preprocess script threads are not running")]
    Unavailable,
}

fn at_line(line: Option<u32>) -> String {
    line.map(|l| format!(" at line {l}")).unwrap_or_default()
}

impl ScriptError {
    /// A short machine-readable code for logs and answers.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Compile { .. } | Self::NoMain { .. } => "script_invalid",
            Self::Threw { .. } => "script_threw",
            Self::TimedOut { .. } => "script_timed_out",
            Self::OutOfMemory { .. } => "script_out_of_memory",
            Self::Malformed { .. } => "script_malformed_result",
            Self::Overloaded => "script_overloaded",
            Self::Unavailable => "script_unavailable",
        }
    }

    /// Whether the request could succeed if sent again unchanged (the pool
    /// was busy), as opposed to a fault of the script or the request.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Overloaded | Self::Unavailable)
    }

    /// The error without what the script's exception said: what a sender
    /// may be told (an exception can carry anything the script saw).
    pub fn public_message(&self) -> String {
        match self {
            Self::Compile { script, line, .. } => {
                format!("preprocess script {script} does not load{}", at_line(*line))
            }
            Self::Threw { script, line, .. } => {
                format!("preprocess script {script} threw{}", at_line(*line))
            }
            other => other.to_string(),
        }
    }

    /// The line the error points at, when QuickJS gave one.
    pub fn line(&self) -> Option<u32> {
        match self {
            Self::Compile { line, .. } | Self::Threw { line, .. } => *line,
            _ => None,
        }
    }
}
