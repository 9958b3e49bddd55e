//! Running a source environment's preprocess script on a delivery, before
//! its adapter parses it (docs/preprocess-scripts.md).

use serde_json::Value;
use tributary_adapter::{RawRequest, decode_body};
use tributary_script::{ScriptError, ScriptInput};

use crate::{Pipeline, PipelineError, Route};

/// What a script made of a request that goes on to be parsed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Preprocessed {
    /// The outcome kept in the event's provenance (`script:enforced:verified` ...).
    pub(crate) label: &'static str,
    /// `verified` as returned (`None`: the result had none).
    pub(crate) verified: Option<bool>,
    /// The result's other keys; `None` when there were none.
    pub(crate) output: Option<Value>,
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
                Ok(Some(Preprocessed {
                    label,
                    verified: outcome.verified,
                    output: (!outcome.output.is_empty()).then_some(Value::Object(outcome.output)),
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
