//! `tributary-forwarder`: see the library docs.

use clap::Parser;
use tracing_subscriber::EnvFilter;
use tributary_forwarder::cli::{Cli, LogFormat, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The queue holds customers' data: files readable by their owner only.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    run(cli).await
}
