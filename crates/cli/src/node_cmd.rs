//! `ronde node`: run a node and its local HTTP API.

use std::time::Duration;

use anyhow::Context;
use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;
use ronde_node::api::{ApiAuth, TOKEN_FILE};
use ronde_node::{Node, NodeConfig};
use tokio::net::TcpListener;

use crate::args::{default_data_dir, NodeArgs};
use crate::exit::{self, Coded};

/// How long to wait for the node's first listen address.
const LISTEN_DEADLINE: Duration = Duration::from_secs(10);
/// How long to wait for the node and the API to stop after a signal.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// Run until Ctrl-C or SIGTERM.
pub async fn run(args: NodeArgs) -> anyhow::Result<()> {
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    std::fs::create_dir_all(&data_dir).with_context(|| {
        Coded::new(
            exit::STORAGE,
            format!("could not create the data directory {}", data_dir.display()),
        )
    })?;

    let mut config = NodeConfig::new(&data_dir);
    if !args.listen.is_empty() {
        config.listen = args.listen.clone();
    }
    config.bootstrap = args.bootstrap.clone();
    config.mdns = !args.no_mdns;
    config.location = args.at.map(|p| (p.lat, p.lon));
    config.mailbox_peers = args.mailbox_peers.clone();
    config.mailbox_host = args.mailbox_host;
    config.relay_server = args.relay_server;
    config.external_addresses = args.external_addresses.clone();
    config.city_keys = args.city_keys.clone();
    // A phone keeps a few anonymous tokens by itself; infrastructure does
    // not report.
    let phone = !(args.mailbox_host || args.relay_server);
    config.auto_tokens =
        (phone && !args.no_auto_tokens).then(ronde_node::config::AutoTokens::default);
    // Always-on nodes keep their peer id: phones dial them by it. A phone
    // takes a fresh one at every start (docs/threat-model.md).
    if args.mailbox_host || args.relay_server {
        config.identity_file = Some(data_dir.join(ronde_node::peer_key::PEER_KEY_FILE));
    }
    if args.push_allow_local {
        tracing::warn!("push endpoints on local addresses allowed by a test knob");
        config.circle.mailbox_limits.push.allow_local = true;
    }
    if let Some(d) = args.pow_difficulty {
        tracing::warn!(
            difficulty = d,
            "proof-of-work difficulty lowered by a test knob"
        );
        config.difficulty = d;
        config.policy.min_difficulty = d;
    }

    // Bind the API before opening the store, so that a busy port fails
    // before anything else happens.
    if !args.api.ip().is_loopback() {
        tracing::warn!(addr = %args.api, "the API is reachable from other devices; it is meant for this device only");
    }
    let listener = TcpListener::bind(args.api).await.with_context(|| {
        format!("could not open the API on {} (is another ronde node using this port? pick another with --api)", args.api)
    })?;
    let api_addr = listener
        .local_addr()
        .context("could not read the API's address")?;

    let node = Node::start(config).await.with_context(|| {
        format!(
            "could not start the node with data directory {}",
            data_dir.display()
        )
    })?;
    let peer_id = node.peer_id();
    // Only once the node holds the data directory (a second node on it
    // stops above), so that it never replaces a running node's token.
    let auth = match ApiAuth::create(&data_dir) {
        Ok(a) => a,
        Err(e) => {
            let _ = node.shutdown().await;
            return Err(e).with_context(|| {
                Coded::new(
                    exit::STORAGE,
                    format!(
                        "could not write the API token to {}",
                        data_dir.join(TOKEN_FILE).display()
                    ),
                )
            });
        }
    };

    let addrs = match wait_for_listen_addrs(&node).await {
        Ok(a) => a,
        Err(e) => {
            let _ = node.shutdown().await;
            return Err(e);
        }
    };
    println!("Ronde node started.");
    println!("peer id: {peer_id}");
    println!("listening on:");
    for mut a in addrs {
        if !a.iter().any(|p| matches!(p, Protocol::P2p(_))) {
            a.push(Protocol::P2p(peer_id));
        }
        println!("  {a}");
    }
    println!("api: http://{api_addr}");
    println!(
        "api token: {} (new at every start; `ronde` commands read it there)",
        data_dir.join(TOKEN_FILE).display()
    );
    println!(
        "app: {}  (this link opens the app once)",
        auth.login_url(&format!("http://{api_addr}"))
    );
    if args.mailbox_host {
        println!("hosting mailboxes and dead-man's switches for others");
    }
    if args.relay_server {
        println!("relaying connections for peers behind NAT");
    }
    if args.mailbox_host || args.relay_server {
        println!(
            "the peer id is kept in {}",
            data_dir.join(ronde_node::peer_key::PEER_KEY_FILE).display()
        );
    }
    match args.city_keys.len() {
        0 => {}
        1 => println!("fetching the city directory signed by the given city key from peers"),
        n => println!("fetching the directories of {n} cities from peers"),
    }
    match node.status().await {
        Ok(s) if !s.areas.is_empty() => println!(
            "following {} areas around the given location",
            s.areas.len()
        ),
        _ => println!(
            "no location yet: give --at LAT,LON or PUT /v1/location to follow nearby reports"
        ),
    }
    println!("Press Ctrl-C to stop.");
    tracing::info!(%peer_id, api = %api_addr, data_dir = %data_dir.display(), "node running");

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut api = tokio::spawn(ronde_node::api::serve(
        listener,
        node.clone(),
        auth,
        async move {
            let _ = stop_rx.await;
        },
    ));

    let api_result = tokio::select! {
        signal = shutdown_signal() => {
            tracing::info!(signal, "stopping");
            None
        }
        r = &mut api => Some(r),
    };

    let _ = stop_tx.send(());
    let stopped = tokio::time::timeout(STOP_DEADLINE, async {
        let api_done = match api_result {
            Some(r) => r,
            None => api.await,
        };
        let node_done = node.shutdown().await;
        (api_done, node_done)
    })
    .await;

    // The token is worth nothing once the node is gone.
    let _ = std::fs::remove_file(data_dir.join(TOKEN_FILE));
    match stopped {
        Err(_) => anyhow::bail!("the node did not stop within {} s", STOP_DEADLINE.as_secs()),
        Ok((api_done, node_done)) => {
            api_done
                .context("the API task panicked")?
                .context("the API server failed")?;
            match node_done {
                Ok(()) | Err(ronde_node::NodeError::Stopped) => {}
                Err(e) => return Err(e).context("the node did not shut down cleanly"),
            }
        }
    }
    println!("Ronde node stopped.");
    Ok(())
}

/// The node's listen addresses, once it has at least one. A wildcard
/// listener reports one address per interface as each comes up, so wait a
/// little more after the first.
async fn wait_for_listen_addrs(node: &Node) -> anyhow::Result<Vec<Multiaddr>> {
    let deadline = tokio::time::Instant::now() + LISTEN_DEADLINE;
    loop {
        let addrs = node
            .listen_addrs()
            .await
            .context("could not read the node's listen addresses")?;
        if !addrs.is_empty() {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let more = node
                .listen_addrs()
                .await
                .context("could not read the node's listen addresses")?;
            return Ok(if more.len() >= addrs.len() {
                more
            } else {
                addrs
            });
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "the node is not listening on any address after {} s; check --listen",
                LISTEN_DEADLINE.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM, with the signal's name.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot catch SIGTERM; only Ctrl-C stops the node cleanly");
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
