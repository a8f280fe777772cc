//! `ronde contacts`, `ronde journey`, `ronde sos` and `ronde inbox`:
//! clients of a running node's circle API (see `docs/openapi.yaml`) that
//! print for people.

use std::fmt::Write as _;

use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};
use ronde_node::circle::{
    CodesView, ContactList, ContactView, Inbox, InboxItem, InboxNotice, InviteView, JourneyView,
    PlaceView, SosView, SwitchHostState, SwitchStatus,
};
use ronde_protocol::circle::{ContactState, Deviation, JourneyState, SosState};
use serde_json::json;

use crate::args::{
    CodesAction, CodesArgs, ContactsAction, ContactsArgs, InboxArgs, JourneyAction, JourneyArgs,
    SosAction, SosArgs,
};
use crate::client::Client;
use crate::show::{clock, duration, in_how_long, now};

/// `ronde contacts ...`.
pub async fn contacts(args: ContactsArgs) -> anyhow::Result<()> {
    let client = Client::from_args(&args.api)?;
    match args.action {
        ContactsAction::Invite {
            name,
            valid_for,
            no_qr,
        } => {
            let mut body = json!({ "ttl_secs": valid_for });
            if let Some(n) = name {
                body["name"] = n.into();
            }
            let invite: InviteView = client.post("/v1/contacts/invites", body).await?;
            print!("{}", render_invite(&invite, !no_qr, now()));
        }
        ContactsAction::Accept { code, name } => {
            let mut body = json!({ "code": code });
            if let Some(n) = name {
                body["name"] = n.into();
            }
            let c: ContactView = client.post("/v1/contacts/accept", body).await?;
            println!("You accepted the invite of {}.", display_name(&c.name));
            println!(
                "Safety number, to compare with {} (on their screen: `ronde contacts list`):",
                display_name(&c.name)
            );
            println!("  {}", c.safety_number);
            println!(
                "Once they approve you, you share journeys and SOS with each other. \
                 If the numbers differ, someone else's code reached you: remove this contact."
            );
        }
        ContactsAction::List => {
            let list: ContactList = client.get("/v1/contacts").await?;
            print!("{}", render_contacts(&list));
        }
        ContactsAction::Approve { contact, yes } => {
            let list: ContactList = client.get("/v1/contacts").await?;
            // The node resolves the name or id; here only to show the number.
            let safety = match matching(&list, &contact).as_slice() {
                [c] if c.state == ContactState::AwaitingMyApproval => {
                    println!(
                        "The safety number between you and {}:\n\n{}\n",
                        display_name(&c.name),
                        safety_lines(&c.safety_number)
                    );
                    if !yes && !confirm_match(&c.name)? {
                        anyhow::bail!(
                            "not approved: approve only once their phone shows the same 60 digits"
                        );
                    }
                    c.safety_number.clone()
                }
                [c] => c.safety_number.clone(),
                _ => String::new(),
            };
            let c: ContactView = client
                .post(
                    &contact_path(&contact, "/approve"),
                    json!({ "safety_number": safety }),
                )
                .await?;
            println!(
                "{} is in your circle: you now share journeys and SOS.",
                display_name(&c.name)
            );
        }
        ContactsAction::Remove { contact, notify } => {
            let path = format!("{}?notify={notify}", contact_path(&contact, ""));
            let c: ContactView = client.delete(&path).await?;
            if notify {
                println!("Removed {}; they are told.", display_name(&c.name));
            } else {
                println!(
                    "Removed {}; they are not told, and receive nothing more from you.",
                    display_name(&c.name)
                );
            }
        }
    }
    Ok(())
}

/// `ronde journey ...`.
pub async fn journey(args: JourneyArgs) -> anyhow::Result<()> {
    let client = Client::from_args(&args.api)?;
    let (j, what): (JourneyView, &str) = match args.action {
        Some(JourneyAction::Start {
            to,
            eta,
            grace,
            name,
            parents_mode,
            corridor,
            stop,
        }) => {
            let mut body = json!({ "lat": to.lat, "lon": to.lon, "eta_secs": eta });
            if let Some(n) = name {
                body["destination_name"] = n.into();
            }
            if let Some(g) = grace {
                body["grace_secs"] = g.into();
            }
            if parents_mode {
                body["states_only"] = json!({ "corridor_m": corridor, "stop_secs": stop });
            }
            (client.post("/v1/journey", body).await?, "Journey started.")
        }
        Some(JourneyAction::Extend { by }) => (
            client
                .post("/v1/journey/extend", json!({ "add_secs": by }))
                .await?,
            "More time: your circle is told the new arrival time.",
        ),
        Some(JourneyAction::Arrived { code }) => (
            client.post("/v1/journey/arrived", code_body(code)).await?,
            "Welcome: your circle is told you arrived.",
        ),
        Some(JourneyAction::Cancel { code }) => (
            client.post("/v1/journey/cancel", code_body(code)).await?,
            "Journey cancelled: your circle is told.",
        ),
        Some(JourneyAction::Status) | None => (client.get("/v1/journey").await?, ""),
    };
    if !what.is_empty() {
        println!("{what}");
    }
    print!("{}", render_journey(&j, now()));
    Ok(())
}

/// `ronde sos ...`.
pub async fn sos(args: SosArgs) -> anyhow::Result<()> {
    let client = Client::from_args(&args.api)?;
    match args.action {
        None => {
            let body = json!({ "note": args.note.unwrap_or_default() });
            let s: SosView = client.post("/v1/sos", body).await?;
            let names: Vec<String> = s.recipients.iter().map(|r| display_name(&r.name)).collect();
            println!(
                "SOS sent to {} ({}).",
                plural(names.len(), "contact"),
                names.join(", ")
            );
            if s.place.is_none() {
                println!("Your location was not included: the node does not know it (ronde node --at, or PUT /v1/location).");
            }
            println!("It is re-sent until someone acknowledges it. `ronde sos status` shows who did; `ronde sos cancel` ends it.");
        }
        Some(SosAction::Cancel { code }) => {
            let _: SosView = client.post("/v1/sos/cancel", code_body(code)).await?;
            println!("SOS cancelled: your circle is told.");
        }
        Some(SosAction::Status) => {
            let s: SosView = client.get("/v1/sos").await?;
            print!("{}", render_sos(&s, now()));
        }
    }
    Ok(())
}

/// The body of an end or a cancel: the code, if given. The answer is the
/// same for the code and the duress code, and so is what is printed.
fn code_body(code: Option<String>) -> serde_json::Value {
    match code {
        Some(c) => json!({ "code": c }),
        None => json!({}),
    }
}

/// `ronde codes ...`.
pub async fn codes(args: CodesArgs) -> anyhow::Result<()> {
    let client = Client::from_args(&args.api)?;
    match args.action {
        CodesAction::Set {
            code,
            duress_code,
            current,
        } => {
            let mut body = json!({ "code": code, "duress_code": duress_code });
            if let Some(c) = current {
                body["current_code"] = c.into();
            }
            let _: CodesView = client.put("/v1/circle/codes", body).await?;
            println!(
                "Codes set. Ending a journey or cancelling an SOS now needs one (--code).\n\
                 With the duress code it seems done, exactly as with your code, while your \
                 circle is told you may be forced to, and the alert goes on."
            );
        }
        CodesAction::Clear { code } => {
            let _: CodesView = client
                .delete_json("/v1/circle/codes", json!({ "code": code }))
                .await?;
            println!("Codes removed: ending a journey or cancelling an SOS needs no code.");
        }
    }
    Ok(())
}

/// `ronde inbox`.
pub async fn inbox(args: InboxArgs) -> anyhow::Result<()> {
    let client = Client::from_args(&args.api)?;
    let path = match args.since {
        Some(s) => format!("/v1/inbox?since={s}"),
        None => "/v1/inbox".to_owned(),
    };
    let inbox: Inbox = client.get(&path).await?;
    print!("{}", render_inbox(&inbox, now()));
    if args.no_ack {
        return Ok(());
    }
    let unseen: Vec<u64> = inbox
        .items
        .iter()
        .filter(|i| !i.seen)
        .map(|i| i.id)
        .collect();
    let alerts = inbox.items.iter().filter(|i| !i.seen && i.alert).count();
    if !unseen.is_empty() {
        for chunk in unseen.chunks(1000) {
            let _: serde_json::Value = client
                .post("/v1/inbox/ack", json!({ "ids": chunk }))
                .await?;
        }
        if alerts > 0 {
            println!(
                "\n{} acknowledged: the sender knows you have seen it.",
                plural(alerts, "alert")
            );
        }
    }
    Ok(())
}

/// The path of a contact's route: its name or id, percent-encoded.
fn contact_path(contact: &str, suffix: &str) -> String {
    let mut seg = String::new();
    for b in contact.trim().bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            seg.push(char::from(b));
        } else {
            let _ = write!(seg, "%{b:02X}");
        }
    }
    format!("/v1/contacts/{seg}{suffix}")
}

fn display_name(n: &str) -> String {
    if n.is_empty() {
        "(no name)".to_owned()
    } else {
        n.to_owned()
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn place(p: &PlaceView) -> String {
    match &p.cell {
        Some(c) => format!("around {:.4},{:.4} (cell {c})", p.lat, p.lon),
        None => format!("{:.5},{:.5}", p.lat, p.lon),
    }
}

fn when(at: u64, now: u64) -> String {
    if at >= now {
        format!("{} ({})", in_how_long(at, now), clock(at, now))
    } else {
        format!("{} ago ({})", duration(now - at), clock(at, now))
    }
}

/// A QR code of `text` in Unicode half blocks, light on dark (for a
/// terminal with a dark background), with its quiet zone.
pub fn qr(text: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::L).ok()?;
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

fn render_invite(i: &InviteView, with_qr: bool, now: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Invite from {}, valid {} (single use):\n",
        display_name(&i.name),
        in_how_long(i.expires_at, now).replace("in ", "for ")
    );
    if with_qr {
        if let Some(q) = qr(&i.qr) {
            let _ = writeln!(out, "{q}");
        }
    }
    let _ = writeln!(out, "{}\n", i.code);
    if let Some(short) = &i.short_code {
        let _ = writeln!(
            out,
            "Short code: {short}  (left at your mailbox hosts; it works where both phones use\n             the same hosts, such as the city's relays)\n"
        );
    }
    let _ = writeln!(
        out,
        "Give it to someone you trust, in person if you can; they run\n  ronde contacts accept CODE\n\
         Then compare the safety number that `ronde contacts list` shows on both devices,\n\
         and approve them: ronde contacts approve NAME"
    );
    out
}

fn state_text(s: ContactState) -> &'static str {
    match s {
        ContactState::Mutual => "in your circle",
        ContactState::AwaitingMyApproval => {
            "waiting for YOUR approval: compare the safety number, then ronde contacts approve"
        }
        ContactState::AwaitingTheirApproval => "waiting for their approval",
    }
}

fn render_contacts(l: &ContactList) -> String {
    let mut out = String::new();
    if l.contacts.is_empty() {
        out.push_str("Nobody in your circle yet: `ronde contacts invite` makes a code for someone you trust.\n");
    }
    for c in &l.contacts {
        let _ = writeln!(
            out,
            "{}  ({})  id {}",
            display_name(&c.name),
            state_text(c.state),
            &c.id.to_hex()[..12]
        );
        let _ = writeln!(out, "  safety number  {}", c.safety_number);
        if c.queued > 0 {
            let _ = writeln!(out, "  {} not delivered yet", plural(c.queued, "message"));
        }
    }
    if l.pending_invites > 0 {
        let _ = writeln!(
            out,
            "{} not accepted yet.",
            plural(l.pending_invites, "invite")
        );
    }
    out
}

fn render_journey(j: &JourneyView, now: u64) -> String {
    let mut out = String::new();
    let state = match j.state {
        JourneyState::Active => "under way",
        JourneyState::Overdue => "OVERDUE: your circle was alerted",
        JourneyState::Arrived => "arrived",
        JourneyState::Cancelled => "cancelled",
        JourneyState::Expired => "ended (8-hour limit)",
    };
    let _ = writeln!(out, "  journey      {state}");
    match &j.destination_name {
        Some(n) => {
            let _ = writeln!(out, "  to           {n} ({})", place(&j.destination));
        }
        None => {
            let _ = writeln!(out, "  to           {}", place(&j.destination));
        }
    }
    if let Some(rule) = j.states_only {
        let _ = writeln!(
            out,
            "  parents' mode  only states are shared; an alert if more than {} m off the route or stopped {}",
            rule.corridor_m,
            duration(u64::from(rule.stop_secs))
        );
    }
    if j.near_destination && j.state == JourneyState::Active {
        let _ = writeln!(
            out,
            "  nearly there  within 100 m of the destination: ronde journey arrived"
        );
    }
    let _ = writeln!(out, "  shared with  {}", plural(j.contacts, "contact"));
    if matches!(j.state, JourneyState::Active | JourneyState::Overdue) {
        let _ = writeln!(out, "  expected     {}", when(j.expected_arrival, now));
        let _ = writeln!(
            out,
            "  alert        {} if you have not arrived (ronde journey arrived)",
            when(j.overdue_at, now)
        );
        let switch = match j.switch {
            SwitchStatus::Armed => {
                "armed with a mailbox host: your circle is alerted even if this device dies"
            }
            SwitchStatus::Pending => {
                "not armed yet (no mailbox host reached): only this device can alert your circle"
            }
            SwitchStatus::Failed => "not armed: only this device can alert your circle",
            SwitchStatus::Withdrawn => "withdrawn",
        };
        let _ = writeln!(out, "  dead-man's switch  {switch}");
        for h in &j.switch_hosts {
            let state = match h.state {
                SwitchHostState::Depositing => "depositing",
                SwitchHostState::Armed => "holds it (receipt checked)",
                SwitchHostState::Withdrawn => "withdrawn",
                SwitchHostState::Failed => "failed (refused, or no valid receipt)",
            };
            let operator = if h.operator.is_empty() {
                "your own host"
            } else {
                h.operator.as_str()
            };
            let _ = writeln!(out, "    held by    {} ({operator}): {state}", h.peer);
        }
        if j.last_position_at.is_none() {
            let _ = writeln!(
                out,
                "  position     not shared yet (give the node your location: PUT /v1/location)"
            );
        }
    }
    for a in &j.acked_by {
        let _ = writeln!(out, "  seen by      {}", display_name(&a.name));
    }
    out
}

fn render_sos(s: &SosView, now: u64) -> String {
    let mut out = String::new();
    let state = match s.state {
        SosState::Active if s.acknowledged => "active, acknowledged",
        SosState::Active => "active, re-sent until someone acknowledges it",
        SosState::Cancelled => "cancelled",
    };
    let _ = writeln!(out, "SOS {state}, raised {}", when(s.raised_at, now));
    if !s.note.is_empty() {
        let _ = writeln!(out, "  note  {}", s.note);
    }
    for r in &s.recipients {
        match r.acked_at {
            Some(t) => {
                let _ = writeln!(
                    out,
                    "  {}  seen it ({})",
                    display_name(&r.name),
                    when(t, now)
                );
            }
            None => {
                let _ = writeln!(out, "  {}  not acknowledged yet", display_name(&r.name));
            }
        }
    }
    out
}

fn describe(i: &InboxItem, now: u64) -> String {
    let who = display_name(&i.from_name);
    match &i.notice {
        InboxNotice::Sos { note, place: p, .. } => {
            let mut s = format!("SOS from {who}");
            if !note.is_empty() {
                let _ = write!(s, ": \"{note}\"");
            }
            if let Some(p) = p {
                let _ = write!(s, " at {}", place(p));
            }
            s
        }
        InboxNotice::SosUpdated { place: p, .. } => match p {
            Some(p) => format!("{who}'s SOS: now at {}", place(p)),
            None => format!("{who}'s SOS was sent again"),
        },
        InboxNotice::SosCancelled { .. } => format!("{who} cancelled their SOS"),
        InboxNotice::Overdue {
            expected_arrival,
            last_seen,
            ..
        } => {
            let mut s = format!(
                "{who} has NOT ARRIVED (expected {})",
                when(*expected_arrival, now)
            );
            match last_seen {
                Some(f) => {
                    let _ = write!(s, "; last seen at {} {}", place(&f.place), when(f.at, now));
                }
                None => s.push_str("; no recent position"),
            }
            s
        }
        InboxNotice::Deviated { reason, fix, .. } => {
            let what = match reason {
                Deviation::OffRoute => "LEFT THEIR ROUTE",
                Deviation::Stopped => "HAS STOPPED MOVING",
            };
            format!(
                "{who} {what} at {} ({})",
                place(&fix.place),
                when(fix.at, now)
            )
        }
        InboxNotice::Duress { at, .. } => format!(
            "{who} CANCELLED UNDER DURESS ({}): they may be forced to; their phone shows it cancelled, so do not call them openly",
            when(*at, now)
        ),
        InboxNotice::JourneyStarted {
            destination,
            expected_arrival,
            states_only,
            ..
        } => format!(
            "{who} started a journey to {}, expected {}{}",
            place(destination),
            when(*expected_arrival, now),
            if *states_only {
                " (parents' mode: you are told if they leave the route or stop)"
            } else {
                ""
            }
        ),
        InboxNotice::JourneyChanged {
            expected_arrival, ..
        } => format!("{who} now expects to arrive {}", when(*expected_arrival, now)),
        InboxNotice::Position { fix, .. } => {
            format!("{who} is at {} ({})", place(&fix.place), when(fix.at, now))
        }
        InboxNotice::Arrived { .. } => format!("{who} arrived"),
        InboxNotice::JourneyCancelled { .. } => format!("{who} ended their journey"),
        InboxNotice::Acked { .. } => format!("{who} has seen your alert"),
        InboxNotice::ContactRequest { safety_number } => format!(
            "{who} accepted your invite. Compare the safety number {safety_number} with them, then: ronde contacts approve {}",
            i.from_name
        ),
        InboxNotice::ContactMutual => format!("{who} is now in your circle"),
        InboxNotice::ContactLeft => format!("{who} left your circle"),
    }
}

fn render_inbox(inbox: &Inbox, now: u64) -> String {
    let mut out = String::new();
    if inbox.items.is_empty() {
        out.push_str("Nothing from your circle.\n");
    }
    for i in &inbox.items {
        let flag = if i.alert && !i.seen {
            "ALERT "
        } else if i.alert {
            "alert "
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "#{:<4} {:>12}  {flag}{}",
            i.id,
            when(i.received_at, now),
            describe(i, now)
        );
    }
    out
}

/// The contacts a name or id (prefix) names, as the node resolves it.
fn matching<'a>(list: &'a ContactList, query: &str) -> Vec<&'a ContactView> {
    let lower = query.trim().to_lowercase();
    let is_hex = lower.len() >= 4 && lower.bytes().all(|b| b.is_ascii_hexdigit());
    list.contacts
        .iter()
        .filter(|c| (is_hex && c.id.to_hex().starts_with(&lower)) || c.name.to_lowercase() == lower)
        .collect()
}

/// The 12 groups of a safety number on two lines of six, to read aloud.
fn safety_lines(number: &str) -> String {
    let groups: Vec<&str> = number.split_whitespace().collect();
    groups
        .chunks(6)
        .map(|line| format!("    {}", line.join(" ")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Ask whether the person's phone shows the same number; no terminal means
/// no answer.
fn confirm_match(name: &str) -> anyhow::Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "compare this number with {} (their phone shows it too), then run again with --yes",
            display_name(name)
        );
    }
    print!(
        "Does {}'s phone show exactly these 60 digits? [y/N] ",
        display_name(name)
    );
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_paths_are_escaped() {
        assert_eq!(contact_path("Bob", "/approve"), "/v1/contacts/Bob/approve");
        assert_eq!(
            contact_path("Zoé / ami", ""),
            "/v1/contacts/Zo%C3%A9%20%2F%20ami"
        );
    }

    #[test]
    fn a_journey_shows_where_its_switch_is_held() {
        use ronde_node::circle::SwitchHostView;
        use ronde_protocol::circle::{JourneyState, MessageId};
        let j = JourneyView {
            id: MessageId([1; 16]),
            state: JourneyState::Active,
            near_destination: false,
            states_only: None,
            destination_name: None,
            started_at: 1_000,
            destination: PlaceView {
                lat: 48.8,
                lon: 2.4,
                accuracy_m: None,
                cell: None,
            },
            expected_arrival: 2_000,
            overdue_at: 2_600,
            ends_at: 30_000,
            last_position_at: Some(1_000),
            switch: SwitchStatus::Armed,
            switch_release_at: 2_720,
            switch_hosts: vec![
                SwitchHostView {
                    peer: "…AbCdEfGh".into(),
                    operator: "Ville d'Ivry".into(),
                    state: SwitchHostState::Armed,
                },
                SwitchHostView {
                    peer: "…StUvWxYz".into(),
                    operator: String::new(),
                    state: SwitchHostState::Failed,
                },
            ],
            contacts: 1,
            acked_by: vec![],
        };
        let out = render_journey(&j, 1_500);
        assert!(
            out.contains("held by    …AbCdEfGh (Ville d'Ivry): holds it (receipt checked)"),
            "{out}"
        );
        assert!(
            out.contains("…StUvWxYz (your own host): failed (refused, or no valid receipt)"),
            "{out}"
        );
    }

    #[test]
    fn qr_codes_render_as_half_blocks() {
        let q = qr("RONDE1:ABC").expect("a QR code");
        assert!(q.contains('\u{2580}') || q.contains('\u{2584}') || q.contains('\u{2588}'));
        let lines: Vec<&str> = q.lines().collect();
        // A version-1 code is 21 modules plus 4 of quiet zone each side,
        // two rows per line.
        assert_eq!(lines[0].chars().count(), 29);
        assert_eq!(lines.len(), 15);
    }
}
