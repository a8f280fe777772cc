//! # ronde-relay
//!
//! The city relay: a Ronde node that follows every area of a city, counts
//! the reports it sees into hourly aggregates (cell × category × hour) and
//! forgets each report when it expires; a dashboard for the city's
//! operators with k-suppressed maps, trends, hotspots and exports; and the
//! signed directory of safe places and street mediators that phones fetch.
//!
//! | module        | what |
//! |---------------|------|
//! | [`config`]    | `relay.toml`, the jurisdiction → areas |
//! | [`rules`]     | sans-IO aggregation rules and state machine, the local calendar |
//! | [`query`]     | sans-IO filters, k-suppression, hotspots, trend, GeoJSON/CSV/HTML |
//! | [`store`]     | the sled database and its durability |
//! | [`directory`] | places, mediators, heartbeats, flags; signing the directory |
//! | [`server`]    | [`Relay::start`]: the wiring; ingest and maintenance loops |
//! | [`http`]      | public and operator HTTP routes |
//! | [`maps`]      | the city basemap (PMTiles, `Range`) and the vendored map libraries |
//! | [`state`]     | what the loops and the routes share; flags, the summary |
//! | [`metrics`]   | Prometheus text exposition |
//! | [`keys`]      | the city key file |
//! | [`tokens`]    | the token issuer and its issuance policy (protocol.md §8.5) |
//! | [`cli`]       | `ronde relay …` |
//!
//! The relay never logs a location finer than an area, a key, or a report.

pub mod cli;
pub mod config;
pub mod directory;
pub mod http;
pub mod keys;
pub mod maps;
pub mod metrics;
pub mod ogc;
pub mod query;
pub mod rules;
pub mod server;
pub mod state;
pub mod store;
pub mod tokens;

pub use config::RelayConfig;
pub use server::{run_server, Relay, RelayError, StartOptions};
