//! `ronde-relay`: the city relay as a standalone binary (the same as
//! `ronde relay`).

use std::process::ExitCode;

use clap::Parser;
use ronde_relay::cli::{run, RelayArgs};

#[derive(Debug, Parser)]
#[command(name = "ronde-relay", version)]
struct Cli {
    #[command(flatten)]
    args: RelayArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,libp2p_kad=error,ronde_relay=info,ronde_node=info")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
