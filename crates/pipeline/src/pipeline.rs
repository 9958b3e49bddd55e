//! The request path: route -> adapter (verify, parse) -> dedup key -> engine
//! (plans) -> store append (group commit). Nothing here runs an action.

use std::sync::{Arc, RwLock};

use chrono::Utc;
use serde::Deserialize;
use tributary_adapter::{AdapterError, Parsed, RawRequest, VerificationOutcome, decode_body};
use tributary_core::{
    Overrides,
    config::{Config, Mapping, SourceKind},
    dedup::DedupDecision,
    event::{Event, EventId},
    plan::ActionPlan,
};
use tributary_http::HttpAdapter;
use tributary_http_legacy::HttpLegacyAdapter;
use tributary_rudderstack::RudderstackAdapter;
use tributary_segment::{SegmentAdapter, TrackingCall, authenticate_write_key, header_write_key};
use tributary_store::{AppendItem, AppendOutcome, Provenance, RejectedRequest, Store, StoreError};

use tributary_script::{Limits, ScriptPool};

use crate::{
    LiveConfig, PipelineError, Receipt, RejectedItem, Route,
    preprocess::{Preprocessed, apply_dedup, parse_preprocessed},
    rejected_log::{Gate, LogGate, RejectedLogBudget},
};

/// At most this many refused items of one request are described in its
/// rejected-log entry and its log line; the rest are counted.
const REJECTED_ITEMS_DESCRIBED: usize = 10;

/// What [`Pipeline::replay_logged`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum LoggedReplay {
    /// No event-log entry has this id.
    NotFound,
    /// The entry is a rejected request: it has no normalized event.
    NotReplayable,
    /// A dry run: the plans the current mappings and toggles give.
    DryRun {
        /// The plans.
        plans: Vec<ActionPlan>,
    },
    /// Appended again as a new entry.
    Replayed {
        /// The new entry's id.
        event_id: EventId,
        /// Its plans.
        plans: Vec<ActionPlan>,
    },
}

/// Ingests requests for one configuration. Share it (`Arc`) between handlers.
pub struct Pipeline {
    config: Arc<Config>,
    live: RwLock<Arc<LiveConfig>>,
    /// Held while a new revision is read and applied, so two refreshes
    /// never apply the same changes twice or out of order.
    applying: tokio::sync::Mutex<()>,
    overrides: RwLock<Arc<Overrides>>,
    store: Arc<dyn Store>,
    rejected_budget: RejectedLogBudget,
    rejected_lines: LogGate,
    scripts: ScriptPool,
}

#[derive(Deserialize)]
struct WriteKeyProbe {
    #[serde(rename = "writeKey")]
    write_key: Option<String>,
}

impl Pipeline {
    /// A pipeline over `config`'s sources and the sources the store holds,
    /// loading the persisted mapping toggles too.
    pub async fn new(config: Arc<Config>, store: Arc<dyn Store>) -> Result<Self, StoreError> {
        let pipeline = Self {
            live: RwLock::new(Arc::new(LiveConfig::from_file(&config))),
            applying: tokio::sync::Mutex::new(()),
            config,
            overrides: RwLock::new(Arc::new(Overrides::none())),
            store,
            rejected_budget: RejectedLogBudget::default(),
            rejected_lines: LogGate::default(),
            scripts: ScriptPool::new(Limits::default()),
        };
        pipeline.refresh_overrides().await?;
        pipeline.refresh_live().await?;
        Ok(pipeline)
    }

    /// The configuration file's settings. Its `sources` are the file's
    /// alone: [`Pipeline::live`] has every source being served.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The sources being served now. Hold the `Arc` for the length of one
    /// piece of work so it sees one revision throughout.
    pub fn live(&self) -> Arc<LiveConfig> {
        self.live
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Applies the store's configuration revisions newer than the one being
    /// served. Returns the revision served afterwards. Replicas call this
    /// periodically; the management layer calls it after each commit.
    pub async fn refresh_live(&self) -> Result<u64, StoreError> {
        let _one_at_a_time = self.applying.lock().await;
        let current = self.live();
        let head = self.store.config_head().await?;
        if head == current.revision() {
            return Ok(head);
        }
        let (head, changes) = self.store.config_sources_since(current.revision()).await?;
        let (next, problems) = current.with_changes(
            head,
            changes,
            &self.config.environments,
            self.config.store.secrets_key.as_ref(),
        );
        for p in &problems {
            tracing::error!(source = %p.key, reason = %p.reason, revision = head, "A stored source cannot be served; its URLs answer 404.");
        }
        *self
            .live
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(next);
        tracing::info!(revision = head, "Configuration revision applied.");
        Ok(head)
    }

    /// The threads that run preprocess scripts.
    pub fn scripts(&self) -> &ScriptPool {
        &self.scripts
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Whether a receive token belongs to a source environment (lets the
    /// server refuse an unknown one before reading the body).
    pub fn knows_token(&self, token: &str) -> bool {
        self.live().route_by_token(token).is_some()
    }

    /// Whether a Tracking API write key belongs to a source environment,
    /// compared in constant time. Lets the server refuse an unknown header
    /// key before reading the body.
    pub fn knows_write_key(&self, key: &str) -> bool {
        self.live().route_by_write_key(key).is_some()
    }

    /// Reloads the mapping toggles from the store. Replicas sharing a
    /// PostgreSQL store call this periodically to see each other's toggles.
    pub async fn refresh_overrides(&self) -> Result<(), StoreError> {
        let mut overrides = Overrides::none();
        for o in self.store.mapping_overrides().await? {
            overrides.set(&o.source, &o.environment, &o.mapping, o.active);
        }
        *self
            .overrides
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(overrides);
        Ok(())
    }

    /// The mapping toggles in force (they win over a mapping's own `active`).
    pub fn overrides(&self) -> Arc<Overrides> {
        self.overrides
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Persists a mapping's active flag and applies it at once. `Ok(false)`
    /// when no such mapping exists.
    pub async fn set_mapping_active(
        &self,
        source: &str,
        environment: &str,
        mapping: &str,
        active: bool,
    ) -> Result<bool, StoreError> {
        let exists = self
            .live()
            .source(source)
            .and_then(|s| s.config.environments.get(environment))
            .is_some_and(|se| se.mappings.iter().any(|m| m.id == mapping));
        if !exists {
            return Ok(false);
        }
        self.store
            .set_mapping_active(source, environment, mapping, active)
            .await?;
        self.refresh_overrides().await?;
        Ok(true)
    }

    /// The plans the current mappings and toggles give `event` (a dry run).
    pub fn plan(&self, event: &Event) -> Vec<ActionPlan> {
        self.live().engine().plan(event, &self.overrides())
    }

    /// Runs a logged event again as a new event-log entry (new id, received
    /// now) with the current mappings and toggles. Dedup does not apply: a
    /// replay is deliberate. Returns the new entry's id and its plans.
    pub async fn replay(&self, original: &Event) -> Result<(EventId, Vec<ActionPlan>), StoreError> {
        let mut event = original.clone();
        event.received_at = Utc::now();
        event.id = EventId::generate(event.received_at);
        let live = self.live();
        let plans = live.engine().plan(&event, &self.overrides());
        let outcome = self
            .store
            .append(vec![AppendItem {
                event,
                plans: plans.clone(),
                dedup: None,
                provenance: Provenance {
                    config_revision: live.revision(),
                    verification: None,
                    replay_of: Some(original.id),
                },
            }])
            .await?;
        let id = outcome
            .first()
            .map(AppendOutcome::event_id)
            .ok_or_else(|| StoreError::Database("append returned no outcome".to_owned()))?;
        Ok((id, plans))
    }

    /// Whether a mapping runs now: its persisted toggle when it has one,
    /// else the configuration's `active`.
    pub fn mapping_active(&self, source: &str, environment: &str, mapping: &Mapping) -> bool {
        self.overrides()
            .get(source, environment, &mapping.id)
            .unwrap_or(mapping.active)
    }

    /// Replays a logged event by id, or with `dry_run` only plans it. Shared
    /// by the admin API and the console so both answer the same way.
    pub async fn replay_logged(
        &self,
        id: EventId,
        dry_run: bool,
    ) -> Result<LoggedReplay, StoreError> {
        let Some(detail) = self.store.event_detail(id).await? else {
            return Ok(LoggedReplay::NotFound);
        };
        let Some(event) = detail.event.event else {
            return Ok(LoggedReplay::NotReplayable);
        };
        if dry_run {
            return Ok(LoggedReplay::DryRun {
                plans: self.plan(&event),
            });
        }
        let (event_id, plans) = self.replay(&event).await?;
        Ok(LoggedReplay::Replayed { event_id, plans })
    }

    /// A delivery on `/integrations/receive/{token}`.
    pub async fn receive(
        &self,
        token: &str,
        mut req: RawRequest,
    ) -> Result<Receipt, PipelineError> {
        let live = self.live();
        let Some(route) = live.route_by_token(token) else {
            self.log_rejected(
                None,
                &req,
                "unknown_token",
                "no source is configured for this URL",
            )
            .await;
            return Err(PipelineError::UnknownToken);
        };
        req.source.clone_from(&route.source.key);
        route.environment.clone_into(&mut req.environment);
        let preprocessed = match self.preprocess(route, &req, true).await {
            Ok(p) => p,
            Err(refusal) => {
                self.log_rejected(Some(route), &req, refusal.code, &refusal.logged)
                    .await;
                return Err(refusal.error);
            }
        };
        let parsed = match parse_preprocessed(route, &mut req, preprocessed.as_ref()) {
            Ok(p) => p,
            Err(e) => {
                self.log_rejected(Some(route), &req, e.code(), &e.message())
                    .await;
                return Err(e.into());
            }
        };
        self.commit(&live, route, &req, parsed, preprocessed.as_ref())
            .await
    }

    /// A Segment-compatible Tracking API call (`/v1/track` ... `/v1/batch`),
    /// routed and authenticated by write key.
    pub async fn tracking(
        &self,
        call: TrackingCall,
        mut req: RawRequest,
    ) -> Result<Receipt, PipelineError> {
        let live = self.live();
        let route = match self.presented_write_key(&req) {
            Some(key) => live.route_by_write_key(&key),
            None => None,
        };
        let Some(route) = route else {
            let message = "a valid write key is required (HTTP Basic `key:`, X-Write-Key, or writeKey in the body)";
            self.log_rejected(None, &req, "invalid_write_key", message)
                .await;
            return Err(PipelineError::UnknownWriteKey {
                message: message.to_owned(),
            });
        };
        req.source.clone_from(&route.source.key);
        route.environment.clone_into(&mut req.environment);
        let parsed = parse_tracking(route, call, &req).and_then(|parsed| {
            authenticate_write_key(&req, parsed.body_write_key.as_ref(), route.settings)?;
            Ok(parsed)
        });
        let parsed = match parsed {
            Ok(p) => p,
            Err(e) => {
                self.log_rejected(Some(route), &req, e.code(), &e.message())
                    .await;
                return Err(e.into());
            }
        };
        self.commit(&live, route, &req, parsed, None).await
    }

    /// The write key a Tracking API request presents: HTTP Basic user,
    /// `X-Write-Key`, or the body's top-level `writeKey`.
    fn presented_write_key(&self, req: &RawRequest) -> Option<String> {
        if let Some(key) = header_write_key(req) {
            return Some(key);
        }
        // Only without a header key is the body decoded here (and again by the adapter).
        let body = decode_body(req).ok()?;
        serde_json::from_slice::<WriteKeyProbe>(&body)
            .ok()?
            .write_key
    }

    async fn commit(
        &self,
        live: &LiveConfig,
        route: Route<'_>,
        req: &RawRequest,
        parsed: Parsed,
        preprocessed: Option<&Preprocessed>,
    ) -> Result<Receipt, PipelineError> {
        let overrides = self.overrides();
        // Kept only where a scheme or a script is configured: on every other
        // event it would be the same 30 bytes saying nothing.
        let scheme = (!matches!(parsed.verification, VerificationOutcome::NotConfigured))
            .then(|| parsed.verification.label());
        let verification = match (scheme, preprocessed) {
            (Some(scheme), Some(p)) => Some(format!("{scheme}, {}", p.label)),
            (Some(scheme), None) => Some(scheme.to_owned()),
            (None, Some(p)) => Some(p.label.to_owned()),
            (None, None) => None,
        };
        let output = preprocessed.and_then(|p| p.output.as_ref());
        let mut items = Vec::with_capacity(parsed.items.len());
        let mut rejected = Vec::new();
        for item in parsed.items {
            match item {
                Ok(mut event) => {
                    // Before dedup: a key path may read the script's output.
                    // An event from the script's `items` has its own already.
                    if event.preprocess.is_none() {
                        event.preprocess = output.cloned();
                    }
                    let dedup = match apply_dedup(&mut event, &route.settings.dedup) {
                        DedupDecision::Check(scope) => Some(scope),
                        DedupDecision::Dropped { reason } => {
                            tracing::debug!(event_id = %event.id, %reason, "Dedup key dropped; the event runs non-idempotently.");
                            None
                        }
                        DedupDecision::Disabled | DedupDecision::NoKey => None,
                    };
                    let plans = live.engine().plan_by_reference(&event, &overrides);
                    items.push(AppendItem {
                        event,
                        plans,
                        dedup,
                        provenance: Provenance {
                            config_revision: live.revision(),
                            verification: verification.clone(),
                            replay_of: None,
                        },
                    });
                }
                Err(e) => rejected.push(RejectedItem::from(&e)),
            }
        }
        if !rejected.is_empty() {
            let (code, message) = describe_rejected_items(&rejected);
            self.log_rejected(Some(route), req, code, &message).await;
        }
        if items.is_empty() && !rejected.is_empty() {
            return Err(PipelineError::AllItemsRejected { items: rejected });
        }
        let planned: Vec<usize> = items.iter().map(planned_actions).collect();
        let outcomes = if items.is_empty() {
            Vec::new()
        } else {
            self.store.append(items).await?
        };
        let duplicates = outcomes
            .iter()
            .filter(|o| matches!(o, AppendOutcome::Duplicate { .. }))
            .count();
        let pushed: usize = outcomes
            .iter()
            .zip(planned)
            .map(|(o, planned)| queued(planned, o))
            .sum();
        // Outbox depth as two counters (pushed here, popped by the workers):
        // a gauge of a fast-moving queue would mostly show noise.
        metrics::counter!("tributary_outbox_pushed_total", "source" => route.source.key.clone())
            .increment(pushed as u64);
        metrics::counter!("tributary_events_received_total", "source" => route.source.key.clone())
            .increment((outcomes.len() + rejected.len()) as u64);
        Ok(Receipt {
            source: route.source.key.clone(),
            environment: route.environment.to_owned(),
            kind: route.source.kind,
            accepted: outcomes.len() - duplicates,
            duplicates,
            rejected,
            queued: pushed,
            event_ids: outcomes.iter().map(AppendOutcome::event_id).collect(),
            verification: parsed.verification,
        })
    }

    /// Writes a `rejected` entry to the event log and one log line, both
    /// bounded: the entry keeps a redacted body excerpt and the bounded stored
    /// headers, and is written only within the rejected log's budgets; the
    /// line is written only within the log gate's. A store failure here is
    /// traced, never allowed to mask the real error.
    pub(crate) async fn log_rejected(
        &self,
        route: Option<Route<'_>>,
        req: &RawRequest,
        code: &str,
        message: &str,
    ) {
        let source = route.map(|r| r.source.key.as_str()).unwrap_or("");
        let record = RejectedRequest {
            received_at: req.received_at,
            source: route.map(|r| r.source.key.clone()),
            environment: route.map(|r| r.environment.to_owned()),
            code: code.to_owned(),
            message: message.to_owned(),
            body: rejected_excerpt(req),
            headers: req.stored_headers(route.and_then(|r| r.settings.verification.as_ref())),
        };
        let bytes = rejected_entry_bytes(&record);
        let stored = match self.rejected_budget.take(bytes) {
            Ok(()) => true,
            Err(refusal) => {
                metrics::counter!("tributary_rejected_log_dropped_total", "reason" => refusal.as_str())
                    .increment(1);
                metrics::counter!("tributary_rejected_log_dropped_bytes_total", "reason" => refusal.as_str())
                    .increment(bytes);
                false
            }
        };
        if let Gate::Pass { suppressed } = self.rejected_lines.check() {
            tracing::info!(
                source,
                code,
                message,
                stored,
                suppressed_lines = suppressed,
                "Request rejected."
            );
        }
        if !stored {
            return;
        }
        if let Err(e) = self.store.record_rejected(record).await
            && let Gate::Pass { suppressed } = self.rejected_lines.check()
        {
            tracing::warn!(error = %e, suppressed_lines = suppressed, "Could not log a rejected request.");
        }
    }
}

/// One code and message for a request's refused items: the first few
/// described, the rest counted.
/// The actions of `item` an append would put in the outbox: its planned
/// ones (a skipped plan is logged, never queued).
pub(crate) fn planned_actions(item: &AppendItem) -> usize {
    item.plans.iter().filter(|p| p.is_planned()).count()
}

/// How many of an item's `planned` actions its append put in the outbox:
/// none for a duplicate, and none of those the store ran at once.
pub(crate) fn queued(planned: usize, outcome: &AppendOutcome) -> usize {
    match outcome {
        AppendOutcome::Accepted { ran_local, .. } => planned.saturating_sub(ran_local.len()),
        AppendOutcome::Duplicate { .. } => 0,
    }
}

fn describe_rejected_items(rejected: &[RejectedItem]) -> (&str, String) {
    let code = rejected
        .first()
        .map_or("invalid_event", |i| i.error.code.as_str());
    let mut message = format!("{} items refused", rejected.len());
    for item in rejected.iter().take(REJECTED_ITEMS_DESCRIBED) {
        message.push_str(&format!(
            "; item {}: {} (at `{}`)",
            item.index,
            item.error.message,
            item.error.field.as_deref().unwrap_or("")
        ));
    }
    if rejected.len() > REJECTED_ITEMS_DESCRIBED {
        message.push_str(&format!(
            "; {} more not described",
            rejected.len() - REJECTED_ITEMS_DESCRIBED
        ));
    }
    (code, message)
}

/// The body excerpt a rejected entry keeps: the first bytes, credentials
/// redacted. A compressed body is not kept: its bytes say nothing to a reader
/// and could hide a credential from the redaction.
fn rejected_excerpt(req: &RawRequest) -> Vec<u8> {
    let compressed = req
        .header("content-encoding")
        .is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity"));
    if compressed {
        return format!("({} compressed bytes, not kept)", req.body.len()).into_bytes();
    }
    let cut = req
        .body
        .len()
        .min(tributary_store::REJECTED_BODY_EXCERPT_BYTES);
    tributary_core::headers::redact_excerpt(&req.body[..cut]).into_bytes()
}

/// What a rejected entry costs the store, near enough for a budget.
fn rejected_entry_bytes(r: &RejectedRequest) -> u64 {
    let headers: usize = r.headers.iter().map(|(n, v)| n.len() + v.len() + 6).sum();
    let size = r
        .body
        .len()
        .min(tributary_store::REJECTED_BODY_EXCERPT_BYTES)
        + headers
        + r.code.len()
        + r.message.len().min(1024)
        + 128;
    u64::try_from(size).unwrap_or(u64::MAX)
}

pub(crate) fn parse_receive(route: Route<'_>, req: &RawRequest) -> Result<Parsed, AdapterError> {
    let settings = route.settings;
    match route.source.kind {
        SourceKind::Segment | SourceKind::Jitsu | SourceKind::Freshpaint => {
            SegmentAdapter::new(route.source.kind).parse(req, settings)
        }
        SourceKind::Rudderstack => RudderstackAdapter::new().parse(req, settings),
        SourceKind::HttpLegacy => HttpLegacyAdapter::new().parse(req, settings),
        SourceKind::Http => HttpAdapter::new().parse(req, settings),
        // Rows from Hightouch's and Census's HTTP Request destinations, and
        // Polytomic's `sync.records` webhook (tributary-resource-api).
        SourceKind::Hightouch | SourceKind::Census => {
            tributary_resource_api::RowAdapter::new().parse(req, settings)
        }
        SourceKind::Polytomic => {
            tributary_resource_api::PolytomicAdapter::new().parse(req, settings)
        }
    }
}

fn parse_tracking(
    route: Route<'_>,
    call: TrackingCall,
    req: &RawRequest,
) -> Result<Parsed, AdapterError> {
    match route.source.kind {
        SourceKind::Segment | SourceKind::Jitsu | SourceKind::Freshpaint => {
            SegmentAdapter::new(route.source.kind).parse_tracking_api(call, req, route.settings)
        }
        SourceKind::Rudderstack => {
            RudderstackAdapter::new().parse_tracking_api(call, req, route.settings)
        }
        other => Err(AdapterError::Unauthorized {
            code: "write_key_wrong_kind",
            message: format!("`{other}` sources do not take the Segment-compatible API"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use tributary_core::{
        ActionType,
        event::{Event, EventId},
        plan::{ActionPayload, ActionPlan, PlanOrigin, PlanOutcome, SkipReason},
    };
    use tributary_store::{ActionId, AttemptOutcome, LocalRun};

    use super::*;

    fn plan(outcome: PlanOutcome) -> ActionPlan {
        ActionPlan {
            action: ActionType::DeleteUser,
            origin: PlanOrigin::Mapping {
                mapping: "m".into(),
            },
            outcome,
            notes: Vec::new(),
        }
    }

    /// The outbox counter counts what entered the outbox: a skipped plan
    /// never does, nor an action the store ran at append, nor a duplicate.
    #[test]
    fn only_queued_actions_count_as_pushed() {
        let planned = || {
            plan(PlanOutcome::Planned {
                payload: ActionPayload::DeleteUser {
                    user_id: "u1".into(),
                },
            })
        };
        let skipped = plan(PlanOutcome::Skipped {
            reason: SkipReason::Inactive,
        });
        let event: Event = serde_json::from_value(serde_json::json!({
            "id": EventId::generate(Utc::now()).to_string(),
            "source": "s", "environment": "production", "kind": "track", "event": "Paid",
            "data": {}, "timestamp": Utc::now().to_rfc3339(),
            "received_at": Utc::now().to_rfc3339(), "raw": {},
        }))
        .unwrap();
        let item = AppendItem {
            event,
            plans: vec![planned(), skipped, planned()],
            dedup: None,
            provenance: Provenance::default(),
        };
        assert_eq!(planned_actions(&item), 2);
        let event_id = item.event.id;
        let ids: Vec<ActionId> = (0..3).map(|_| ActionId::generate(event_id)).collect();
        let accepted = |ran: usize| AppendOutcome::Accepted {
            event_id,
            action_ids: ids.clone(),
            ran_local: ids[..ran]
                .iter()
                .map(|&id| LocalRun {
                    id,
                    environment: "production".into(),
                    outcome: AttemptOutcome::Succeeded {
                        summary: "applied".into(),
                    },
                })
                .collect(),
        };
        assert_eq!(queued(2, &accepted(0)), 2);
        assert_eq!(queued(2, &accepted(2)), 0);
        let duplicate = AppendOutcome::Duplicate {
            event_id,
            original_event_id: event_id,
        };
        assert_eq!(queued(2, &duplicate), 0);
    }
}
