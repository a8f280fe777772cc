//! `ronde demo`: [`run`], the entry point of the command. Its flags are
//! [`DemoArgs`] (in `args.rs`, re-exported here).

use anyhow::Context as _;

pub use crate::args::{parse_duration, DemoArgs, DEFAULT_TILES};
use crate::demo::Demo;
use crate::narrator::Narrator;

/// Run `ronde demo` until Ctrl-C (or `--duration`), printing the URLs and
/// the narrative to stdout. Async: call it inside a multi-thread Tokio
/// runtime. A second Ctrl-C while stopping exits at once (code 130).
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let narrator = Narrator::stdout();
    // Ctrl-C while starting: give up at once (dropping the start removes
    // the temporary directory).
    let demo = tokio::select! {
        demo = Demo::start(&args, narrator) => demo.context("the demo could not start")?,
        _ = ctrl_c() => {
            eprintln!("stopped while starting");
            return Ok(());
        }
    };
    let stop = async {
        ctrl_c().await;
        tokio::spawn(async {
            ctrl_c().await;
            eprintln!("stopping at once");
            std::process::exit(130);
        });
    };
    let summary = demo
        .run(stop)
        .await
        .context("the demo did not stop cleanly")?;
    println!(
        "done: the phones made {} reports; the relay counted {}.",
        summary.reports, summary.counted
    );
    Ok(())
}

/// Resolves at Ctrl-C; never if the signal cannot be listened to (then
/// only `--duration` stops the demo).
async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
