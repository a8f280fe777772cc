//! `cargo run -p ronde-sim --release --example sim -- --nodes 200`: the
//! same as `ronde sim`, without the rest of the `ronde` binary.

use clap::Parser;

/// A city of real Ronde nodes over an emulated network.
#[derive(Parser)]
struct Cmd {
    #[command(flatten)]
    sim: ronde_sim::cli::SimArgs,
}

fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,libp2p_kad=error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    ronde_sim::cli::run(Cmd::parse().sim)
}
