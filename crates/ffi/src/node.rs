//! [`RondeNode`]: the node object, started by [`start_node`]. Each method
//! checks its input as the HTTP API does (same codes), then calls the same
//! [`ronde_node::Node`] method on the library's runtime.

use std::sync::Arc;

use libp2p::Multiaddr;
use ronde_node::{Node, NodeConfig};
use ronde_protocol::Category;

use crate::error::RondeError;
use crate::listeners::{self, InboxListener, ReportListener, TaskHandle};
use crate::on_runtime;
use crate::records::*;

/// Largest search radius of `nearby`, metres (the API's).
const MAX_RADIUS_M: f64 = ronde_node::api::MAX_RADIUS_M;
/// Largest search radius of `safe_places`, metres (the API's).
const MAX_PLACES_RADIUS_M: f64 = ronde_node::api::MAX_PLACES_RADIUS_M;

/// A running node. Every method can be called from any thread; the async
/// ones run on the library's runtime.
#[derive(uniffi::Object)]
pub struct RondeNode {
    node: Node,
}

fn addrs(list: &[String], what: &str) -> Result<Vec<Multiaddr>, RondeError> {
    list.iter()
        .map(|a| {
            a.parse::<Multiaddr>().map_err(|e| {
                RondeError::invalid(
                    "invalid_field",
                    format!("{what} {a:?} is not a multiaddress: {e}"),
                )
            })
        })
        .collect()
}

fn check_coordinates(lat: f64, lon: f64) -> Result<(), RondeError> {
    if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
        return Err(ronde_protocol::GeoError::BadLatitude(lat).into());
    }
    if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
        return Err(ronde_protocol::GeoError::BadLongitude(lon).into());
    }
    Ok(())
}

fn check_radius(r: f64, max: f64) -> Result<f64, RondeError> {
    if r.is_finite() && r > 0.0 && r <= max {
        Ok(r)
    } else {
        Err(RondeError::invalid(
            "bad_radius",
            format!(
                "radius_m {r} is not allowed; use a number of metres above 0 and at most {max}"
            ),
        ))
    }
}

/// The node's configuration from the app's settings.
fn config(s: NodeSettings) -> Result<NodeConfig, RondeError> {
    if s.data_dir.trim().is_empty() {
        return Err(RondeError::invalid(
            "invalid_field",
            "data_dir must name the app's private directory",
        ));
    }
    let mut c = NodeConfig::new(&s.data_dir);
    if !s.listen.is_empty() {
        c.listen = addrs(&s.listen, "listen address")?;
    }
    c.bootstrap = addrs(&s.bootstrap, "bootstrap address")?;
    c.bootstrap.extend(addrs(&s.relays, "relay address")?);
    c.mailbox_peers = addrs(&s.mailbox_peers, "mailbox peer")?;
    c.city_keys = s
        .city_keys
        .iter()
        .map(|k| {
            k.parse().map_err(|_| {
                RondeError::invalid("invalid_field", format!("{k:?} is not a city key"))
            })
        })
        .collect::<Result<_, _>>()?;
    if let Some(p) = s.location {
        check_coordinates(p.lat, p.lon)?;
        c.location = Some((p.lat, p.lon));
    }
    c.mdns = s.mdns;
    // A phone keeps a few anonymous tokens of today by itself, from its
    // city's relays, in the foreground only (docs/protocol.md §8.5).
    c.auto_tokens = Some(ronde_node::config::AutoTokens::default());
    if let Some(d) = s.pow_difficulty {
        c.difficulty = d;
        c.policy.min_difficulty = d;
    }
    if s.fast_timers {
        c.circle = ronde_node::config::CircleConfig::for_tests();
    }
    Ok(c)
}

/// Start a node: open its store in `settings.data_dir`, listen, dial the
/// bootstrap peers and relays, follow the areas around `location`.
#[uniffi::export(async_runtime = "tokio")]
pub async fn start_node(settings: NodeSettings) -> Result<Arc<RondeNode>, RondeError> {
    let config = config(settings)?;
    std::fs::create_dir_all(&config.data_dir).map_err(|e| RondeError::Storage {
        code: "storage_error".into(),
        message: format!("could not create the data directory: {e}"),
    })?;
    let node = on_runtime(async move { Ok(Node::start(config).await?) }).await?;
    Ok(Arc::new(RondeNode { node }))
}

impl RondeNode {
    /// Run `f` on the node, on the library's runtime.
    async fn with<T, F, Fut>(&self, f: F) -> Result<T, RondeError>
    where
        T: Send + 'static,
        F: FnOnce(Node) -> Fut,
        Fut: std::future::Future<Output = Result<T, ronde_node::NodeError>> + Send + 'static,
    {
        let fut = f(self.node.clone());
        on_runtime(async move { Ok(fut.await?) }).await
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl RondeNode {
    /// This session's peer id.
    pub fn peer_id(&self) -> String {
        self.node.peer_id().to_string()
    }

    /// Identity, addresses, peers, areas, reports stored.
    pub async fn status(&self) -> Result<NodeStatus, RondeError> {
        Ok(self.with(|n| async move { n.status().await }).await?.into())
    }

    /// Stop the node: close connections, flush the store. Every later call
    /// fails with `node_stopped`.
    pub async fn stop(&self) -> Result<(), RondeError> {
        self.with(|n| async move { n.shutdown().await }).await
    }

    /// Foreground, background or suspended (see `Lifecycle`).
    pub async fn set_lifecycle(&self, lifecycle: Lifecycle) -> Result<LifecycleState, RondeError> {
        let l = lifecycle.into();
        Ok(self
            .with(move |n| async move { n.set_lifecycle(l).await })
            .await?
            .into())
    }

    /// The UnifiedPush endpoint the app's distributor gave
    /// (`onNewEndpoint`), registered with the mailbox hosts so that they
    /// wake it when mail arrives; `None` withdraws it (`onUnregistered`).
    /// Set it at every start. `bad_input` unless an http(s) URL of at most
    /// 512 bytes.
    pub async fn set_push_endpoint(
        &self,
        endpoint: Option<String>,
    ) -> Result<PushState, RondeError> {
        Ok(self
            .with(move |n| async move { n.set_push_endpoint(endpoint).await })
            .await?
            .into())
    }

    /// A push wake-up arrived (the UnifiedPush receiver's `onMessage`):
    /// fetch the mail from every mailbox host now, whatever the lifecycle
    /// state. Returns once the fetches are done (at most 25 s): alerts
    /// have reached the inbox listeners, and the app may end its
    /// background task. A suspended node stays suspended.
    pub async fn wake(&self) -> Result<WakeState, RondeError> {
        Ok(self.with(|n| async move { n.wake().await }).await?.into())
    }

    /// Where the person is: follow the areas around it. Returns them.
    pub async fn set_location(&self, lat: f64, lon: f64) -> Result<Vec<String>, RondeError> {
        check_coordinates(lat, lon)?;
        let areas = self
            .with(move |n| async move { n.set_location(lat, lon).await })
            .await?;
        Ok(areas.iter().map(|a| a.to_string()).collect())
    }

    /// Report what happened at a point: `category` is one of the API's
    /// (`harassment`, `poor_lighting`, ...); `precision` 7 (about 150 m,
    /// the default) or 6 (about 1 km).
    pub async fn report(
        &self,
        category: String,
        lat: f64,
        lon: f64,
        precision: Option<u8>,
    ) -> Result<Published, RondeError> {
        let category = category
            .parse::<Category>()
            .map_err(|e| RondeError::invalid("unknown_category", e.to_string()))?;
        check_coordinates(lat, lon)?;
        if let Some(p) = precision {
            if p != 6 && p != 7 {
                return Err(RondeError::invalid(
                    "bad_precision",
                    format!(
                        "cell precision {p} is not allowed; use 6 (about 1 km) or 7 (about 150 m)"
                    ),
                ));
            }
        }
        Ok(self
            .with(move |n| async move { n.report(category, lat, lon, precision).await })
            .await?
            .into())
    }

    /// Live reports within `radius_m` (up to 10 km) of a point.
    pub async fn nearby(&self, lat: f64, lon: f64, radius_m: f64) -> Result<Nearby, RondeError> {
        check_coordinates(lat, lon)?;
        let r = check_radius(radius_m, MAX_RADIUS_M)?;
        Ok(self
            .with(move |n| async move { n.nearby(lat, lon, r).await })
            .await?
            .into())
    }

    /// Call `listener` with every new report, until the handle is cancelled
    /// or dropped.
    pub fn listen_reports(&self, listener: Arc<dyn ReportListener>) -> Arc<TaskHandle> {
        let call: Arc<dyn Fn(NearbyReport) + Send + Sync> =
            Arc::new(move |r| listener.on_report(r));
        Arc::new(listeners::spawn_listener(
            &self.node,
            listeners::reports,
            call,
        ))
    }

    /// Call `listener` with every new inbox item (alerts and the rest),
    /// until the handle is cancelled or dropped.
    pub fn listen_inbox(&self, listener: Arc<dyn InboxListener>) -> Arc<TaskHandle> {
        let call: Arc<dyn Fn(InboxItem) + Send + Sync> =
            Arc::new(move |i| listener.on_inbox_item(i));
        Arc::new(listeners::spawn_listener(
            &self.node,
            listeners::inbox,
            call,
        ))
    }

    /// A single-use invite valid `ttl_secs` (1 s to 24 h), showing `name`.
    pub async fn create_invite(
        &self,
        name: Option<String>,
        ttl_secs: u64,
    ) -> Result<Invite, RondeError> {
        Ok(self
            .with(move |n| async move { n.create_invite(name, ttl_secs).await })
            .await?
            .into())
    }

    /// Accept someone's invite code (from their QR code or link).
    pub async fn accept_invite(
        &self,
        code: String,
        name: Option<String>,
    ) -> Result<Contact, RondeError> {
        Ok(self
            .with(move |n| async move { n.accept_invite(&code, name).await })
            .await?
            .into())
    }

    /// Approve a contact who accepted my invite, with the safety number the
    /// person compared with them, in full (`safety_number_mismatch`
    /// otherwise). `contact`: an id, a prefix of one, or a name.
    pub async fn approve_contact(
        &self,
        contact: String,
        safety_number: String,
    ) -> Result<Contact, RondeError> {
        Ok(self
            .with(
                move |n| async move { n.approve_contact_compared(&contact, &safety_number).await },
            )
            .await?
            .into())
    }

    /// Every contact.
    pub async fn contacts(&self) -> Result<Vec<Contact>, RondeError> {
        let list = self.with(|n| async move { n.contacts().await }).await?;
        Ok(list.contacts.into_iter().map(Into::into).collect())
    }

    /// Remove a contact; with `notify`, tell them.
    pub async fn remove_contact(
        &self,
        contact: String,
        notify: bool,
    ) -> Result<Contact, RondeError> {
        Ok(self
            .with(move |n| async move { n.remove_contact(&contact, notify).await })
            .await?
            .into())
    }

    /// Start a journey to a point, expected at `expected_arrival` (Unix
    /// seconds), overdue `grace_secs` later. `states_only`: parents' mode
    /// (only started, arrived, deviated and overdue are shared);
    /// `destination_name`: shown on this device, never sent.
    #[uniffi::method(default(states_only = None, destination_name = None))]
    pub async fn start_journey(
        &self,
        lat: f64,
        lon: f64,
        expected_arrival: u64,
        grace_secs: u64,
        states_only: Option<StatesOnly>,
        destination_name: Option<String>,
    ) -> Result<Journey, RondeError> {
        check_coordinates(lat, lon)?;
        let states_only = states_only.map(Into::into);
        Ok(self
            .with(move |n| async move {
                n.start_journey_with(
                    lat,
                    lon,
                    expected_arrival,
                    grace_secs,
                    states_only,
                    destination_name,
                )
                .await
            })
            .await?
            .into())
    }

    /// Move the expected arrival to `expected_arrival` (Unix seconds).
    pub async fn extend_journey(&self, expected_arrival: u64) -> Result<Journey, RondeError> {
        Ok(self
            .with(move |n| async move { n.extend_journey(expected_arrival).await })
            .await?
            .into())
    }

    /// "Add time": `add_secs` more before the journey is overdue (the
    /// API's `POST /v1/journey/extend` with `add_secs`).
    pub async fn add_time(&self, add_secs: u64) -> Result<Journey, RondeError> {
        Ok(self
            .with(move |n| async move {
                let at = n.journey().await?.expected_arrival.saturating_add(add_secs);
                n.extend_journey(at).await
            })
            .await?
            .into())
    }

    /// Contacts' journeys as this phone follows them: alerts first, then
    /// journeys on the way, then ended ones.
    pub async fn shared_journeys(&self) -> Result<Vec<SharedJourney>, RondeError> {
        let list = self
            .with(|n| async move { n.shared_journeys().await })
            .await?;
        Ok(list.journeys.into_iter().map(Into::into).collect())
    }

    /// The circle service: contacts, queue, hosts, whether codes are set.
    pub async fn circle_status(&self) -> Result<CircleStatus, RondeError> {
        Ok(self
            .with(|n| async move { n.circle_status().await })
            .await?
            .into())
    }

    /// Set the person's code and duress code (different, 4 to 12
    /// digits each); to change codes already set,
    /// `current_code` is the current (real) code. Once set, ending a
    /// journey or cancelling an SOS needs one of them: the duress code
    /// answers exactly as the real one while the contacts are told it was
    /// entered under duress. Returns whether codes are set.
    #[uniffi::method(default(current_code = None))]
    pub async fn set_codes(
        &self,
        code: String,
        duress_code: String,
        current_code: Option<String>,
    ) -> Result<bool, RondeError> {
        let view = self
            .with(move |n| async move { n.set_codes(code, duress_code, current_code).await })
            .await?;
        Ok(view.codes)
    }

    /// Remove both codes, with the current (real) code. Returns whether
    /// codes are set (false).
    pub async fn clear_codes(&self, code: String) -> Result<bool, RondeError> {
        let view = self
            .with(move |n| async move { n.clear_codes(code).await })
            .await?;
        Ok(view.codes)
    }

    /// The current (or last) journey.
    pub async fn journey(&self) -> Result<Journey, RondeError> {
        Ok(self
            .with(|n| async move { n.journey().await })
            .await?
            .into())
    }

    /// Arrived (with the person's code, once codes are set; the duress
    /// code answers the same while the contacts get a duress alert).
    pub async fn arrived(&self, code: Option<String>) -> Result<Journey, RondeError> {
        Ok(self
            .with(move |n| async move { n.arrived_with_code(code).await })
            .await?
            .into())
    }

    /// End the journey without arriving (with the code, once set; the
    /// duress code answers the same while the contacts get a duress
    /// alert).
    pub async fn cancel_journey(&self, code: Option<String>) -> Result<Journey, RondeError> {
        Ok(self
            .with(move |n| async move { n.cancel_journey_with_code(code).await })
            .await?
            .into())
    }

    /// Raise an SOS to the whole circle, with a note (at most 280 bytes).
    pub async fn sos(&self, note: String) -> Result<Sos, RondeError> {
        Ok(self
            .with(move |n| async move { n.sos(&note).await })
            .await?
            .into())
    }

    /// The current (or last) SOS, and who acknowledged it.
    pub async fn sos_status(&self) -> Result<Sos, RondeError> {
        Ok(self
            .with(|n| async move { n.sos_status().await })
            .await?
            .into())
    }

    /// Cancel the SOS (with the code, once set; the duress code answers
    /// the same while the alert goes on and the contacts are told).
    pub async fn cancel_sos(&self, code: Option<String>) -> Result<Sos, RondeError> {
        Ok(self
            .with(move |n| async move { n.cancel_sos_with_code(code).await })
            .await?
            .into())
    }

    /// What contacts said, oldest first; only items after `since` if given.
    pub async fn inbox(&self, since: Option<u64>) -> Result<Vec<InboxItem>, RondeError> {
        let inbox = self
            .with(move |n| async move { n.inbox(since).await })
            .await?;
        Ok(inbox.items.into_iter().map(Into::into).collect())
    }

    /// Mark items seen; an SOS or overdue alert among them is acknowledged
    /// to its sender. Returns the ids that exist.
    pub async fn ack_inbox(&self, ids: Vec<u64>) -> Result<Vec<u64>, RondeError> {
        self.with(move |n| async move { n.ack_inbox(ids).await })
            .await
    }

    /// Safe places within `radius_m` (up to the API's maximum) of a point,
    /// nearest first, from the city directory (empty without one).
    pub async fn safe_places(
        &self,
        lat: f64,
        lon: f64,
        radius_m: f64,
    ) -> Result<Vec<SafePlace>, RondeError> {
        check_coordinates(lat, lon)?;
        let r = check_radius(radius_m, MAX_PLACES_RADIUS_M)?;
        let places = self
            .with(move |n| async move { n.safe_places(lat, lon, r).await })
            .await?;
        Ok(places.places.into_iter().map(Into::into).collect())
    }
}
