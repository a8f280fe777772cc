//! Listeners the app implements (foreign traits) and the [`TaskHandle`]
//! that keeps one running: cancelled, or dropped by the app, it stops.

use std::sync::Arc;

use ronde_node::{Node, NodeEvent};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use crate::records::{InboxItem, NearbyReport};

/// Told of every new live report the node stores (from a peer or made
/// here), in the areas it follows.
#[uniffi::export(with_foreign)]
pub trait ReportListener: Send + Sync {
    /// A new report.
    fn on_report(&self, report: NearbyReport);
}

/// Told of every new inbox item: an alert (SOS, overdue) or anything else
/// from the circle (a contact request, an acknowledgement of my SOS...).
#[uniffi::export(with_foreign)]
pub trait InboxListener: Send + Sync {
    /// A new item; `item.alert` says whether to show it now.
    fn on_inbox_item(&self, item: InboxItem);
}

/// A running listener. It stops when `cancel()` is called or when the
/// handle is dropped (garbage-collected), whichever comes first.
#[derive(uniffi::Object)]
pub struct TaskHandle {
    handle: JoinHandle<()>,
}

#[uniffi::export]
impl TaskHandle {
    /// Stop the listener.
    pub fn cancel(&self) {
        self.handle.abort();
    }

    /// Whether it has stopped (cancelled, or the node stopped).
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

impl Drop for TaskHandle {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// What an event is for.
pub(crate) enum Deliver {
    Report(NearbyReport),
    Inbox(InboxItem),
}

fn classify(ev: NodeEvent) -> Deliver {
    match ev {
        NodeEvent::Report(r) => Deliver::Report(r.into()),
        NodeEvent::Alert(i) | NodeEvent::Circle(i) => Deliver::Inbox(i.into()),
    }
}

/// Forward the node's events that `pick` keeps to `call`, on a blocking
/// thread (the app's code may take its time), until the node stops.
pub(crate) fn spawn_listener<T: Send + 'static>(
    node: &Node,
    pick: fn(Deliver) -> Option<T>,
    call: Arc<dyn Fn(T) + Send + Sync>,
) -> TaskHandle {
    let mut events = node.events();
    let handle = crate::runtime().spawn(async move {
        loop {
            match events.recv().await {
                Ok(ev) => {
                    if let Some(item) = pick(classify(ev)) {
                        let call = call.clone();
                        // A listener that panics or fails is the app's
                        // problem, not a reason to stop listening.
                        let _ = tokio::task::spawn_blocking(move || call(item)).await;
                    }
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            }
        }
    });
    TaskHandle { handle }
}

pub(crate) fn reports(d: Deliver) -> Option<NearbyReport> {
    match d {
        Deliver::Report(r) => Some(r),
        Deliver::Inbox(_) => None,
    }
}

pub(crate) fn inbox(d: Deliver) -> Option<InboxItem> {
    match d {
        Deliver::Inbox(i) => Some(i),
        Deliver::Report(_) => None,
    }
}
