//! This person's SOS: raised to every mutual contact, re-sent until one
//! acknowledges it, following the node's location, cancelled.

use libp2p::swarm::Swarm;
use rand::rngs::OsRng;
use ronde_protocol::circle::{CodeCheck, Effect, Message, Place, Sos, SosError, SosState};

use super::records::SosRecord;
use super::store::{keys, Commit};
use super::{storage, CircleClient, SOS_PLACE_GAP_SECS};
use crate::behaviour::Behaviour;
use crate::circle::views::{PlaceView, SosRecipient, SosView};
use crate::error::{CircleRefusal, NodeError};

impl CircleClient {
    pub(super) fn raise_sos(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        note: &str,
        location: Option<(f64, f64)>,
    ) -> Result<SosView, NodeError> {
        let now = self.clock.now();
        if let Some(mut rec) = self.sos.clone().filter(|s| s.sos.is_under_duress()) {
            // The person raises an SOS again after a duress "cancel": the
            // same SOS is shown and sent again.
            let effects = rec.sos.raise_again(now);
            self.run_sos(swarm, &mut rec, effects)?;
            return Ok(self.sos_view(&rec));
        }
        if self
            .sos
            .as_ref()
            .is_some_and(|s| s.sos.state() == SosState::Active)
        {
            return Err(NodeError::Circle(CircleRefusal::SosActive));
        }
        let place = location.and_then(|(lat, lon)| Place::point(lat, lon, 0).ok());
        let (sos, effects) = Sos::start(
            self.mutual_ids(),
            place,
            note,
            self.config.sos,
            now,
            &mut OsRng,
        )
        .map_err(|e| match e {
            SosError::NoRecipients => NodeError::Circle(CircleRefusal::NoContacts),
            SosError::BadNote(d) => NodeError::Circle(CircleRefusal::BadNote(d.to_string())),
            e => NodeError::InvalidInput(e.to_string()),
        })?;
        let mut rec = SosRecord {
            sos,
            place_updated_at: now,
            shown_at_duress: None,
        };
        self.run_sos(swarm, &mut rec, effects)?;
        tracing::debug!("SOS raised");
        Ok(self.sos_view(&rec))
    }

    /// Cancel, with the person's `code` once codes are set: with the duress
    /// code the SOS only seems cancelled (see `codes`). An SOS already
    /// "cancelled" under duress answers as cancelled; the real code ends it.
    pub(super) fn cancel_sos(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        code: Option<&str>,
    ) -> Result<SosView, NodeError> {
        let Some(mut rec) = self
            .sos
            .clone()
            .filter(|s| s.sos.shown_state() == SosState::Active)
            .or_else(|| {
                self.sos.clone().filter(|s| {
                    s.sos.state() == SosState::Active
                        && self.unlock(code).ok() == Some(CodeCheck::Code)
                })
            })
        else {
            return Err(NodeError::Circle(CircleRefusal::NoSos));
        };
        let effects = match self.unlock(code)? {
            CodeCheck::Duress => {
                let before = self.sos_view(&rec);
                let effects = rec.sos.cancel_under_duress(self.clock.now());
                rec.shown_at_duress = Some(SosView {
                    state: rec.sos.shown_state(),
                    ..before
                });
                effects
            }
            _ => rec.sos.cancel(self.clock.now()),
        };
        self.run_sos(swarm, &mut rec, effects)?;
        tracing::debug!("SOS cancelled");
        Ok(self.sos_view(&rec))
    }

    pub(super) fn run_sos(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        rec: &mut SosRecord,
        effects: Vec<Effect>,
    ) -> Result<(), NodeError> {
        let mut circle = self.circle.clone();
        let mut commit = Commit::new();
        let mut queued = Vec::new();
        for e in effects {
            match e {
                Effect::SendTo { to, message } => {
                    self.seal_into(&mut circle, &to, &message, true, &mut commit, &mut queued)?
                }
                Effect::SendToCircle(message) => {
                    let ids = self.mutual_ids();
                    self.seal_into(&mut circle, &ids, &message, true, &mut commit, &mut queued)?
                }
                _ => {}
            }
        }
        commit.put(keys::SOS, &*rec).map_err(storage)?;
        commit.put(keys::CIRCLE, &circle).map_err(storage)?;
        self.store.apply(commit).map_err(storage)?;
        self.circle = circle;
        self.sos = Some(rec.clone());
        self.send_queued(swarm, queued);
        Ok(())
    }

    pub(super) fn sos_view(&self, rec: &SosRecord) -> SosView {
        let s = &rec.sos;
        if let Some(shown) = rec.shown_at_duress.as_ref().filter(|_| s.is_under_duress()) {
            return shown.clone();
        }
        let (place, note) = match s.message() {
            Message::Sos { place, note, .. } => (place.as_ref().map(PlaceView::from), note),
            _ => (None, String::new()),
        };
        SosView {
            id: s.id(),
            state: s.shown_state(),
            raised_at: s.raised_at(),
            note,
            place,
            sends: s.sends(),
            acknowledged: s.is_acknowledged(),
            recipients: s
                .recipients()
                .iter()
                .map(|id| SosRecipient {
                    id: *id,
                    name: self.name_of(id),
                    acked_at: s.acked_by().get(id).copied(),
                })
                .collect(),
        }
    }

    /// The node's location changed: an active SOS follows it.
    pub(crate) fn on_location(&mut self, swarm: &mut Swarm<Behaviour>, location: (f64, f64)) {
        let now = self.clock.now();
        let Some(mut rec) = self
            .sos
            .clone()
            .filter(|s| s.sos.state() == SosState::Active)
        else {
            return;
        };
        if now < rec.place_updated_at + SOS_PLACE_GAP_SECS {
            return;
        }
        let Ok(place) = Place::point(location.0, location.1, 0) else {
            return;
        };
        rec.place_updated_at = now;
        match rec.sos.update_place(place, now) {
            Ok(effects) => {
                if let Err(e) = self.run_sos(swarm, &mut rec, effects) {
                    tracing::warn!(error = %e, "could not send the SOS's new position");
                }
            }
            Err(e) => tracing::debug!(error = %e, "SOS position not updated"),
        }
    }
}
