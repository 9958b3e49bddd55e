//! The shared store suite, run against both backends.

mod suite;
mod support;

mod backend {
    mod postgres;
    mod sqlite;
}

macro_rules! suite {
    ($backend:ident: $($case:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(h) = crate::support::$backend().await else {
                        return;
                    };
                    crate::suite::$case(&h).await;
                }
            )*
        }
    };
}

macro_rules! every_case {
    ($backend:ident) => {
        suite!($backend:
            append_accepts_event_and_plans,
            duplicate_within_window_runs_nothing,
            duplicates_in_one_batch_are_caught,
            scope_includes_type_source_and_environment,
            window_expiry_accepts_again,
            rerun_when_every_action_failed,
            claim_complete_and_lease_checks,
            an_events_actions_run_in_plan_order,
            claim_running_local_runs_or_leases_each_action,
            a_trigger_run_is_the_same_computed_ahead_or_not,
            a_triggers_data_from_its_event_reads_back_everywhere,
            a_round_at_its_limit_says_more,
            apply_local_many_keeps_order_within_a_call,
            a_trigger_runs_only_for_identified_users,
            a_trigger_run_computed_ahead_skips_unknown_users,
            an_append_runs_in_store_actions_at_once_in_order,
            in_store_actions_queue_behind_older_ones_left_in_the_outbox,
            finish_attempts_records_a_batch,
            retry_later_records_each_attempt,
            retry_due_now_is_claimed_again,
            expired_lease_is_reclaimed,
            concurrent_appends_each_learn_their_outcome,
            filters_and_pagination,
            source_status_and_known_types,
            mapping_overrides_persist,
            local_recipients_merge_once_per_action,
            apply_local_many_applies_each_in_order,
            prune_removes_old_entries_only,
            a_refused_job_does_not_fail_its_group,
            nul_characters_do_not_poison_a_group,
            list_actions_by_each_status,
            a_requests_headers_are_stored_once_and_read_with_each_event,
            config_revisions_are_dense_and_checked,
            an_events_provenance_is_kept_and_read_back,
            find_actions_narrows_by_every_filter,
            overrides_are_forgotten_by_mapping_or_by_source,
            a_rare_value_is_found_by_following_cursors,
        );
    };
}

every_case!(sqlite);
every_case!(postgres);
