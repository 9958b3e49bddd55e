//! One worker round on PostgreSQL: run the `local` sink's due actions inside
//! one transaction, and lease the rest.
//!
//! The `local` sink writes to this database, so its actions are leased,
//! applied and recorded in one transaction: a crash loses the effect and
//! the attempt together and the action runs again, and the worker makes one
//! round trip to the pool instead of three (claim, apply, record).

use std::time::Duration;

use chrono::Utc;
use deadpool_postgres::Pool;

use super::ops;
use crate::{
    AttemptOutcome, ClaimRound, LocalEffect, LocalRun, StoreError, model::ms,
    store::LOCAL_ROUND_ROWS,
};

pub(super) async fn claim_running_local(
    pool: &Pool,
    owner: &str,
    limit: usize,
    lease: Duration,
    local_environments: &[String],
) -> Result<ClaimRound, StoreError> {
    let mut client = super::checkout(pool).await?;
    let tx = client.transaction().await?;
    // Bookkeeping, like the claim and attempt records it replaces: the commit
    // need not wait for its WAL flush (docs/store.md).
    tx.batch_execute("SET LOCAL synchronous_commit = off")
        .await?;
    // Leased inside this transaction: SKIP LOCKED keeps other replicas off
    // these rows until it ends, and if it fails nothing of it stays.
    let mine = ops::claim_on(
        &tx,
        owner,
        LOCAL_ROUND_ROWS,
        lease,
        local_environments,
        true,
    )
    .await?;
    let mut attempts = Vec::with_capacity(mine.len());
    if !mine.is_empty() {
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ops::LOCAL_LOCK])
            .await?;
        let now = ms(Utc::now());
        for action in &mine {
            let applied = match action.plan.payload() {
                Some(payload) => {
                    ops::apply_one(&tx, action.id, &action.environment, payload, now).await
                }
                None => Err(StoreError::InvalidInput {
                    field: "plan",
                    problem: "the plan has no payload".to_owned(),
                }),
            };
            let outcome = match applied {
                Ok(LocalEffect::Applied) => AttemptOutcome::Succeeded {
                    summary: "applied to local recipients".to_owned(),
                },
                Ok(LocalEffect::AlreadyApplied) => AttemptOutcome::Succeeded {
                    summary: "already applied".to_owned(),
                },
                // Refused before writing, or a stored record it cannot read
                // (found before any write): this action fails alone, for
                // good, as through the sink. Anything else is the database,
                // and the transaction cannot go on: nothing of it commits.
                Err(e) if e.refused_before_writing() || matches!(e, StoreError::Decode { .. }) => {
                    AttemptOutcome::Failed {
                        summary: e.to_string(),
                    }
                }
                Err(e) => return Err(e),
            };
            attempts.push((action.id, outcome));
        }
        for result in ops::finish_attempts_on(&tx, owner, &attempts).await? {
            // This transaction holds every one of these leases.
            result?;
        }
    }
    let claimed = if limit > 0 {
        ops::claim_on(&tx, owner, limit, lease, local_environments, false).await?
    } else {
        Vec::new()
    };
    tx.commit().await?;
    let more = mine.len() == LOCAL_ROUND_ROWS || (limit > 0 && claimed.len() == limit);
    let ran_local = mine
        .into_iter()
        .zip(attempts)
        .map(|(action, (_, outcome))| LocalRun {
            id: action.id,
            environment: action.environment,
            outcome,
        })
        .collect();
    Ok(ClaimRound {
        claimed,
        ran_local,
        more,
    })
}
