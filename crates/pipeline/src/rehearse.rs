//! Rehearsal: a raw payload, exactly as a platform would send it, run
//! through a source environment's verification (optional), adapter, dedup
//! key and mapping engine, with the current mappings or a proposed source.
//! Nothing is stored and nothing runs.

use serde::Serialize;
use serde_json::Value;
use tributary_adapter::RawRequest;
use tributary_core::{
    MappingEngine, config::SourceConfig, dedup::DedupDecision, event::Event, plan::ActionPlan,
};

use crate::{
    Pipeline, PipelineError, RejectedItem, Route,
    preprocess::{Refusal, apply_dedup, parse_preprocessed},
};

/// What a rehearsed request would have done.
#[derive(Clone, Debug, Serialize)]
pub struct Rehearsal {
    /// The configuration revision rehearsed against.
    pub revision: u64,
    /// Whether the mappings were a proposed, unsaved set.
    pub proposed: bool,
    /// What verification made of it (`not_configured` when skipped).
    pub verification: &'static str,
    /// Each accepted item: the normalized event, its dedup key, its plans
    /// (each plan's notes name the optional paths that reached nothing).
    pub events: Vec<RehearsedEvent>,
    /// Each refused item.
    pub rejected: Vec<RejectedItem>,
    /// Adapter notes (a timestamp replaced, an event-type path that found nothing).
    pub notes: Vec<String>,
    /// What the environment's preprocess script returned, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preprocess: Option<RehearsedPreprocess>,
}

/// A preprocess script's result in a rehearsal.
#[derive(Clone, Debug, Serialize)]
pub struct RehearsedPreprocess {
    /// `verified` as returned.
    pub verified: Option<bool>,
    /// The other keys of the result: what mappings read as `preprocess.<key>`.
    pub output: Option<Value>,
    /// Why the script gave no result, with its line and message (a
    /// rehearsal without verification goes on without the output).
    pub error: Option<String>,
}

/// One rehearsed event.
#[derive(Clone, Debug, Serialize)]
pub struct RehearsedEvent {
    /// The event as it would be logged.
    pub event: Event,
    /// The dedup key, when one applies.
    pub dedup_key: Option<String>,
    /// The plans, in execution order.
    pub plans: Vec<ActionPlan>,
}

impl Pipeline {
    /// Rehearses `req` on `source`/`environment` (a receive-URL delivery).
    /// With `proposed`, that source replaces the served one for this
    /// rehearsal alone. Without `verify`, verification is skipped, so a
    /// payload copied from a platform's docs can be tried without its
    /// signature. `Ok(None)`: no such source environment. The served
    /// preprocess script runs too; without `verify` its `verified` and its
    /// failures are shown, not enforced.
    pub async fn rehearse(
        &self,
        source: &str,
        environment: &str,
        mut req: RawRequest,
        verify: bool,
        proposed: Option<&SourceConfig>,
    ) -> Result<Option<Rehearsal>, PipelineError> {
        let live = self.live();
        let config = match proposed {
            Some(p) => p,
            None => match live.source(source) {
                Some(s) => &s.config,
                None => return Ok(None),
            },
        };
        let Some((environment, settings)) = config.environments.get_key_value(environment) else {
            return Ok(None);
        };
        let mut settings = settings.clone();
        if !verify {
            settings.verification = None;
        }
        // Proposed mappings keep the served script.
        let script = live
            .source(source)
            .and_then(|s| s.scripts.get(environment.as_str()));
        let route = Route {
            source: config,
            environment,
            settings: &settings,
            script,
        };
        req.source.clone_from(&config.key);
        environment.clone_into(&mut req.environment);
        let (preprocessed, shown) = match self.preprocess(route, &req, verify).await {
            Ok(p) => {
                let shown = p.as_ref().map(|p| RehearsedPreprocess {
                    verified: p.verified,
                    output: p.output.clone(),
                    error: None,
                });
                (p, shown)
            }
            Err(Refusal { error, logged, .. }) => match error {
                // The operator sees the whole message, the exception's included.
                PipelineError::Script { code, enforced, .. } if verify => {
                    return Err(PipelineError::Script {
                        code,
                        message: logged,
                        enforced,
                    });
                }
                PipelineError::Script { .. } => (
                    None,
                    Some(RehearsedPreprocess {
                        verified: None,
                        output: None,
                        error: Some(logged),
                    }),
                ),
                other => return Err(other),
            },
        };
        let output = preprocessed.as_ref().and_then(|p| p.output.as_ref());
        let parsed = parse_preprocessed(route, &mut req, preprocessed.as_ref())?;
        let engine;
        let engine = match proposed {
            Some(p) => {
                engine = MappingEngine::for_sources([p]);
                &engine
            }
            None => live.engine(),
        };
        let overrides = self.overrides();
        let mut events = Vec::new();
        let mut rejected = Vec::new();
        for item in parsed.items {
            match item {
                Ok(mut event) => {
                    if event.preprocess.is_none() {
                        event.preprocess = output.cloned();
                    }
                    let dedup_key = match apply_dedup(&mut event, &settings.dedup) {
                        DedupDecision::Check(_) => event.message_id.clone(),
                        _ => None,
                    };
                    let plans = engine.plan(&event, &overrides);
                    events.push(RehearsedEvent {
                        event,
                        dedup_key,
                        plans,
                    });
                }
                Err(e) => rejected.push(RejectedItem::from(&e)),
            }
        }
        Ok(Some(Rehearsal {
            revision: live.revision(),
            proposed: proposed.is_some(),
            verification: parsed.verification.label(),
            events,
            rejected,
            notes: parsed
                .notes
                .iter()
                .map(|n| format!("item {} at `{}`: {}", n.index, n.field, n.message))
                .collect(),
            preprocess: shown,
        }))
    }
}
