//! `tributary-ingest`: wiring only. Today it validates a configuration file
//! and prints the receive URLs it would serve; the server comes with the
//! ingest-service issue.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;
use clap::{Parser, Subcommand};
use tributary_core::config::{self, Config};

#[derive(Parser)]
#[command(name = "tributary-ingest", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file, show_secrets } => match check_config(&file, show_secrets) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn check_config(file: &std::path::Path, show_secrets: bool) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let config = config::load(&file.display().to_string(), &text, &|name| {
        std::env::var(name).ok()
    })?;
    print_urls(&config, show_secrets);
    Ok(())
}

fn mask(secret: &str, show: bool) -> String {
    if show {
        secret.to_owned()
    } else {
        // Enough to tell tokens apart, not enough to use one.
        let head: String = secret.chars().take(4).collect();
        format!("{head}…")
    }
}

fn print_urls(config: &Config, show_secrets: bool) {
    let base = &config.server.public_url;
    println!("Configuration is valid.");
    for (source, env, settings) in config.source_environments() {
        println!(
            "{base}/integrations/receive/{}  source={} kind={} environment={env} mappings={}",
            mask(settings.token.expose(), show_secrets),
            source.key,
            source.kind,
            settings.mappings.len(),
        );
        if let Some(key) = &settings.write_key {
            println!(
                "{base}/v1/batch  (Segment-compatible API)  source={} environment={env} write_key={}",
                source.key,
                mask(key.expose(), show_secrets),
            );
        }
    }
    if !show_secrets {
        println!("Secrets are masked; pass --show-secrets to print them in full.");
    }
}
