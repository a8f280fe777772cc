//! `ronde`: the one command-line entry point of Ronde.
//!
//! `ronde node` runs a node and its local HTTP API; `ronde report`,
//! `ronde nearby`, `ronde status`, `ronde app` and the trusted circle's `ronde contacts`,
//! `ronde journey`, `ronde sos`, `ronde inbox` and the city directory's
//! `ronde places` and `ronde mediators` talk to a running node through
//! that API, exactly as the phone app does. `ronde relay` runs a
//! city relay (crate `ronde-relay`); `ronde demo` a small city on this
//! machine (crate `ronde-demo`); `ronde sim` a simulated network (crate
//! `ronde-sim`).

mod args;
mod circle_cmd;
mod client;
mod exit;
mod node_cmd;
mod places_cmd;
mod show;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0, usage errors to stderr
            // with 2 (clap's own convention, kept as our exit code 2).
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(exit::USAGE));
        }
    };
    init_logging(match cli.command {
        // Kademlia warns at every start of a lone node ("no known peers").
        Command::Node(_) | Command::Relay(_) => {
            "warn,libp2p_kad=error,ronde=info,ronde_node=info,ronde_relay=info"
        }
        // The demo and the simulator tell their own story on stdout; keep
        // the logs to problems (every simulated node starting alone would
        // print Kademlia's warning).
        Command::Demo(_) | Command::Sim(_) => "warn,libp2p_kad=error",
        _ => "warn",
    });

    let result = match cli.command {
        Command::Categories => {
            for c in ronde_protocol::Category::ALL {
                println!("{c}");
            }
            Ok(())
        }
        // The simulator builds and paces its own runtime.
        Command::Sim(a) => ronde_sim::cli::run(*a),
        command => run_async(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(exit::code_of(&err))
        }
    }
}

fn run_async(command: Command) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("could not start the async runtime: {e}"))?;
    runtime.block_on(async move {
        match command {
            Command::Node(a) => node_cmd::run(a).await,
            Command::Report(a) => show::report(a).await,
            Command::Nearby(a) => show::nearby(a).await,
            Command::Status(a) => show::status(a).await,
            Command::App(a) => show::app(a).await,
            Command::Categories | Command::Sim(_) => Ok(()),
            Command::Contacts(a) => circle_cmd::contacts(a).await,
            Command::Journey(a) => circle_cmd::journey(a).await,
            Command::Sos(a) => circle_cmd::sos(a).await,
            Command::Codes(a) => circle_cmd::codes(a).await,
            Command::Inbox(a) => circle_cmd::inbox(a).await,
            Command::Places(a) => places_cmd::places(a).await,
            Command::Basemap(a) => places_cmd::basemap(a).await,
            Command::Mediators(a) => places_cmd::mediators(a).await,
            Command::Relay(a) => ronde_relay::cli::run(a).await,
            Command::Demo(a) => ronde_demo::cli::run(a).await,
        }
    })
}

/// Logs go to stderr, filtered by `RUST_LOG`. Nothing in this binary logs a
/// precise location, a key or the contents of a report.
fn init_logging(default: &str) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
    // The phone library (ronde-ffi) turns logging off at compile time in
    // optimised builds; built in the same cargo command as it, this binary
    // gets no logs either (Cargo unifies the feature).
    if tracing::level_filters::STATIC_MAX_LEVEL == tracing::level_filters::LevelFilter::OFF {
        eprintln!(
            "warning: this ronde was built together with the phone library and logs nothing; \
             build it on its own: cargo build --release -p ronde"
        );
    }
}
