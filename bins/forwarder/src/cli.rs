//! The command line.

use std::path::PathBuf;

use anyhow::bail;
use clap::{Parser, Subcommand, ValueEnum};
use tributary_outbound::DeadLetterFilter;

use crate::{
    backfill::{BackfillOptions, backfill},
    config::ForwarderConfig,
    dead_letters, serve,
};

/// Forward the product's message lifecycle webhooks to Segment.
#[derive(Debug, Parser)]
#[command(name = "tributary-forwarder", version)]
pub struct Cli {
    /// The TOML configuration file.
    #[arg(
        long,
        short,
        env = "TRIBUTARY_FORWARDER_CONFIG",
        default_value = "forwarder.toml",
        global = true
    )]
    pub config: PathBuf,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Receive webhooks and deliver queued events until SIGTERM/SIGINT.
    Serve,
    /// Queue an NDJSON file of webhook envelopes (`-` for stdin).
    Backfill {
        /// The file, or `-`.
        input: PathBuf,
        /// The environment the events belong to.
        #[arg(long, short)]
        environment: String,
        /// Also deliver until the environment's queue is empty (when no
        /// `serve` process is running).
        #[arg(long)]
        deliver: bool,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Validate the configuration file and print what it sets up.
    CheckConfig,
    /// Inspect, re-drive or prune dead letters.
    DeadLetters {
        /// list, redrive or prune.
        #[command(subcommand)]
        action: DeadLetterAction,
    },
}

/// `dead-letters` actions.
#[derive(Debug, Subcommand)]
pub enum DeadLetterAction {
    /// Print dead letters, oldest first.
    List {
        /// Only this environment.
        #[arg(long, short)]
        environment: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// One JSON object per line, with the payload.
        #[arg(long)]
        json: bool,
    },
    /// Move dead letters back into the queue (same messageId).
    Redrive {
        /// Only this environment.
        #[arg(long, short)]
        environment: Option<String>,
        /// Only these ids (repeatable).
        #[arg(long = "id")]
        ids: Vec<i64>,
        /// Every dead letter (required when no other filter is given).
        #[arg(long)]
        all: bool,
    },
    /// Apply the retention settings now (`serve` does it at start and every
    /// `prune_interval`).
    Prune,
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = ForwarderConfig::load(&cli.config)?;
    match cli.command {
        Command::Serve => serve::serve(config).await,
        Command::CheckConfig => {
            print!("{}", describe(&config));
            Ok(())
        }
        Command::Backfill {
            input,
            environment,
            deliver,
            quiet,
        } => {
            let options = BackfillOptions {
                environment,
                deliver,
                progress: !quiet,
            };
            let s = backfill(&config, &input, &options).await?;
            println!(
                "{} lines: {} queued, {} skipped, {} dead-lettered (too large), {} invalid, {} repeats of events already accepted",
                s.lines, s.queued, s.skipped, s.dead_lettered, s.invalid, s.duplicates
            );
            if s.invalid > 0 {
                bail!("{} lines were not valid webhook envelopes", s.invalid);
            }
            Ok(())
        }
        Command::DeadLetters { action } => match action {
            DeadLetterAction::List {
                environment,
                limit,
                json,
            } => {
                let filter = DeadLetterFilter {
                    environment,
                    ids: None,
                    limit: Some(limit),
                };
                let n = dead_letters::list(&config, filter, json, &mut std::io::stdout().lock())
                    .await?;
                eprintln!("{n} dead letters");
                Ok(())
            }
            DeadLetterAction::Redrive {
                environment,
                ids,
                all,
            } => {
                if environment.is_none() && ids.is_empty() && !all {
                    bail!("say which dead letters to redrive: --environment, --id or --all");
                }
                let filter = DeadLetterFilter {
                    environment,
                    ids: (!ids.is_empty()).then_some(ids),
                    limit: None,
                };
                let summary = dead_letters::redrive(&config, filter).await?;
                println!("{} dead letters re-queued", summary.requeued);
                for (environment, count, why) in &summary.skipped {
                    eprintln!(
                        "left {count} dead letters of environment {environment}: {}",
                        dead_letters::explain(environment, *why)
                    );
                }
                Ok(())
            }
            DeadLetterAction::Prune => {
                let r = dead_letters::prune(&config).await?;
                println!(
                    "{} dead letters pruned ({} older than the retention age, {} over the cap) in {} transactions; {} from interrupted redrives re-queued; {} remembered messageIds forgotten (past the redelivery window or its cap)",
                    r.pruned(),
                    r.by_age,
                    r.by_count,
                    r.batches,
                    r.redriven,
                    r.forgotten.total()
                );
                Ok(())
            }
        },
    }
}

/// What `check-config` prints: the settings that matter to an operator,
/// secrets left out.
fn describe(config: &ForwarderConfig) -> String {
    let days_or_off = |age: Option<std::time::Duration>| {
        age.map_or_else(
            || "off (kept until re-driven)".to_owned(),
            |a| humanize(a.as_secs()),
        )
    };
    let mut out = format!(
        "Configuration OK.\nlisten: {}\nqueue: {}\nsegment host: {}\ndead-letter retention: {}\nmax dead letters: {}\nprune interval: {}\nredelivery window: {}, at most {} messageIds\n",
        config.server.listen,
        config.queue_path,
        config.segment.host,
        days_or_off(config.retention.max_age),
        config
            .retention
            .max_count
            .map_or_else(|| "off (no cap)".to_owned(), |n| n.to_string()),
        humanize(config.retention.interval.as_secs()),
        humanize(config.redeliveries.max_age.as_secs()),
        config.redeliveries.max_count,
    );
    for (name, env) in &config.environments {
        let status = if env.write_key.is_some() {
            "forwarded"
        } else {
            "not forwarded: no write key"
        };
        out.push_str(&format!("environment {name}: {status}\n"));
    }
    out
}

/// Whole days, hours or minutes when exact, else seconds.
fn humanize(secs: u64) -> String {
    match secs {
        s if s > 0 && s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        s if s > 0 && s.is_multiple_of(3_600) => format!("{}h", s / 3_600),
        s if s > 0 && s.is_multiple_of(60) => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
