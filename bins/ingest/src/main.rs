//! `tributary-ingest`: parse the command line, set up logging, run.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context;
use clap::{Parser, Subcommand};
use tributary_core::config::{self, Config, SourceDocument};
use tributary_ingest::{
    embedded,
    serve::{self, Banner},
    transfer,
};

// glibc malloc's trimming showed up as a third of batch parsing time; mimalloc
// measured faster end to end (docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "tributary-ingest", version, about)]
struct Cli {
    /// The TOML configuration file. Without one, the embedded default in
    /// --data-dir is used (created on first run).
    #[arg(long, env = "TRIBUTARY_CONFIG")]
    config: Option<PathBuf>,
    /// Where the embedded default keeps its configuration and SQLite store.
    #[arg(long, default_value = "./tributary-data", env = "TRIBUTARY_DATA_DIR")]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a configuration file and print every receive URL it serves.
    CheckConfig {
        /// The TOML configuration file.
        file: PathBuf,
        /// Print tokens and write keys in full instead of masked.
        #[arg(long)]
        show_secrets: bool,
    },
    /// The live configuration as a file, and a file's sources into the
    /// store (through the running service's admin API when it answers).
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Print the configuration file followed by every source made through
    /// the management API, secrets in full: a file `check-config` accepts.
    Export,
    /// Make the stored sources exactly FILE's `[[sources]]` (those the
    /// running configuration file defines are skipped), as one revision.
    Import {
        /// A configuration file, e.g. one `config export` printed.
        file: PathBuf,
        /// Show what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// A configuration file, and its `[[sources]]` tables as written (what
/// the management API shows of file sources).
fn load(file: &Path) -> anyhow::Result<(Config, Vec<SourceDocument>)> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let config = config::load_with_templates(
        &file.display().to_string(),
        &text,
        &|name| std::env::var(name).ok(),
        &tributary_templates::lookup,
    )?;
    // A table naming a template is shown as the loader filled it.
    let documents = config::source_documents(&text)
        .map_err(|e| anyhow::anyhow!("cannot read the sources of {}: {e}", file.display()))?
        .into_iter()
        .map(|d| tributary_templates::fill_from_template(&d, &[]).unwrap_or(d))
        .collect();
    check_scripts(&file.display().to_string(), &config)?;
    Ok((config, documents))
}

/// Compiles every preprocess script of the file, so a script that does not
/// load or exports no `main` stops the start (and `check-config`) instead
/// of failing each request. The error names the file's line: the script's
/// first line there, plus the line the engine reported.
fn check_scripts(file: &str, config: &Config) -> Result<(), config::ConfigErrors> {
    let mut errors = Vec::new();
    for source in &config.sources {
        for (environment, settings) in &source.environments {
            let Some(p) = &settings.preprocess else {
                continue;
            };
            let name = format!("{}/{environment}", source.key);
            if let Err(e) = tributary_script::check(&name, &p.script) {
                errors.push(config::ConfigError {
                    file: file.to_owned(),
                    line: p.first_line + e.line().map_or(0, |l| l as usize).saturating_sub(1),
                    column: 1,
                    field: format!(
                        "sources[{}].environments.{environment}.preprocess.script",
                        source.key
                    ),
                    message: e.to_string(),
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(config::ConfigErrors(errors))
    }
}

fn init_logging() {
    use tracing_subscriber::{EnvFilter, fmt};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("TRIBUTARY_LOG_FORMAT").is_ok_and(|f| f == "json");
    if json {
        fmt().with_env_filter(filter).json().init();
    } else {
        fmt().with_env_filter(filter).init();
    }
}

fn main() -> ExitCode {
    // Every file this process creates (store, configuration, logs) holds
    // customers' data or secrets: readable by its owner only.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::CheckConfig { file, show_secrets }) => load(&file).map(|(config, _)| {
            println!("Configuration is valid.");
            let kind = if show_secrets {
                Banner::FirstRun
            } else {
                Banner::Masked
            };
            let sources: Vec<_> = config.sources.iter().collect();
            print!("{}", serve::banner(&config, &sources, kind));
        }),
        Some(Command::Config { action }) => config_command(cli.config, &cli.data_dir, action),
        None => {
            init_logging();
            run(cli.config, &cli.data_dir)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn config_command(
    config: Option<PathBuf>,
    data_dir: &Path,
    action: ConfigAction,
) -> anyhow::Result<()> {
    let file = match config {
        Some(file) => file,
        None => data_dir.join(embedded::CONFIG_FILE),
    };
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let (config, documents) = load(&file)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match action {
        ConfigAction::Export => {
            print!(
                "{}",
                runtime.block_on(transfer::export(&config, &text, documents))?
            );
        }
        ConfigAction::Import { file, dry_run } => {
            let incoming = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let answer =
                runtime.block_on(transfer::import(&config, documents, incoming, dry_run))?;
            println!("{}", serde_json::to_string_pretty(&answer)?);
        }
    }
    Ok(())
}

fn run(config: Option<PathBuf>, data_dir: &Path) -> anyhow::Result<()> {
    let ((config, documents), banner, shown) = match config {
        Some(file) => (load(&file)?, Banner::Masked, None),
        None => {
            let embedded = embedded::ensure(data_dir)?;
            let file = &embedded.file;
            if embedded.created {
                println!(
                    "First run: wrote the embedded default configuration to {}.",
                    file.display()
                );
            } else {
                println!(
                    "Using the embedded default configuration in {}.",
                    file.display()
                );
            }
            // Printed by the first start that listens, not the first that
            // wrote them (which may have found its port taken).
            let (banner, shown) = if embedded.secrets_not_shown {
                (Banner::FirstRun, Some(data_dir.to_owned()))
            } else {
                (Banner::Masked, None)
            };
            (load(file)?, banner, shown)
        }
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = config.server.runtime_threads(&config.store.backend, cores);
    tracing::info!(threads, cores, "starting the runtime");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?
        .block_on(serve::run(config, documents, banner, move || {
            if let Some(dir) = shown {
                embedded::secrets_shown(&dir);
            }
        }))
}
