//! # ronde-demo
//!
//! `ronde demo`: the whole of Ronde working on one machine, in one command.
//! A city relay with its dashboard, about fifty phones (real Ronde nodes in
//! this process, on libp2p's memory transport) in central Helsinki, on
//! the real streets of the OpenStreetMap basemap it ships, walking about
//! and reporting, a signed directory of safe places and
//! mediators, and a trusted-circle story (a journey that arrives, one that
//! goes overdue, an SOS) whose alerts land in the app of one phone, served
//! on `127.0.0.1`. See `docs/demo.md`.
//!
//! | module        | what |
//! |---------------|------|
//! | [`cli`]       | [`cli::run`], the command |
//! | [`args`]      | its flags, [`DemoArgs`] |
//! | [`demo`]      | [`Demo`]: start the city, run it, take it apart |
//! | [`city`]      | sans-IO: where phones are and walk, what and where they report, darkness |
//! | [`story`]     | the circle story between five phones |
//! | [`directory`] | the demo's safe places and mediators |
//! | [`narrator`]  | one line per event, never a precise location |

pub mod args;
pub mod city;
pub mod cli;
pub mod demo;
pub mod directory;
pub mod narrator;
pub mod story;

pub use cli::{run, DemoArgs};
pub use demo::{Demo, DemoError, Summary, Urls};
pub use narrator::Narrator;
