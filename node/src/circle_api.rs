//! The trusted circle's routes of the local HTTP API (a child module of
//! [`crate::api`], sharing its error answers and body readers).
//!
//! | method | path                              | what                                  |
//! |--------|-----------------------------------|---------------------------------------|
//! | GET    | `/v1/circle`                      | identity, counts, mailbox hosts        |
//! | GET    | `/v1/contacts`                    | contacts, states, safety numbers       |
//! | POST   | `/v1/contacts/invites`            | `{name?, ttl_secs?}` → 201 a code      |
//! | POST   | `/v1/contacts/accept`             | `{code, name?}` → 201 the new contact  |
//! | POST   | `/v1/contacts/{contact}/approve`  | approve someone who accepted my invite |
//! | DELETE | `/v1/contacts/{contact}`          | `?notify=true` to tell them            |
//! | POST   | `/v1/journey`                     | `{lat, lon, eta_secs | expected_arrival, grace_secs?, states_only?}` → 201 |
//! | GET    | `/v1/journey`                     | the current or last journey            |
//! | POST   | `/v1/journey/extend`              | `{add_secs | eta_secs | expected_arrival}` add time |
//! | POST   | `/v1/journey/arrived`             | `{code?}` arrived                      |
//! | POST   | `/v1/journey/cancel`              | `{code?}` cancel                       |
//! | POST   | `/v1/sos`                         | `{note?}` → 201                        |
//! | GET    | `/v1/sos`                         | the SOS and who acknowledged it        |
//! | POST   | `/v1/sos/cancel`                  | `{code?}` cancel the SOS               |
//! | PUT    | `/v1/circle/codes`                | `{code, duress_code, current_code?}`   |
//! | DELETE | `/v1/circle/codes`                | `{code}` remove them                   |
//! | GET    | `/v1/inbox`                       | `?since=ID` what contacts said         |
//! | POST   | `/v1/inbox/ack`                   | `{ids}`: seen; alerts are acknowledged |
//! | GET    | `/v1/circle/journeys`             | contacts' journeys, path and state     |
//!
//! Every POST needs `Content-Type: application/json`, even with an empty
//! body, so that a web page cannot trigger one without a CORS preflight
//! (which this API never answers): a page must not be able to cancel a
//! journey or an SOS.
//!
//! Once codes are set, ending a journey and cancelling an SOS need `code`:
//! the code, or the duress code, which answers exactly as the code does
//! while the circle is alerted and the journey or SOS goes on.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use ronde_protocol::circle::journey::DEFAULT_GRACE_SECS;
use serde::{Deserialize, Serialize};

use super::{check_coordinates, ApiError, AppState, JsonBody, JsonOrEmpty};
use crate::circle::{
    CircleStatus, CodesView, ContactList, ContactView, Inbox, InviteView, JourneyView,
    SharedJourneys, SosView, DEFAULT_INVITE_TTL_SECS,
};
use ronde_protocol::circle::StatesOnly;

/// Most inbox items acknowledged in one request.
pub const MAX_ACK_IDS: usize = 1000;

/// The circle's routes.
pub(super) fn routes(router: Router<AppState>) -> Router<AppState> {
    router
        .route("/v1/circle", get(get_circle))
        .route("/v1/circle/codes", put(put_codes).delete(delete_codes))
        .route("/v1/contacts", get(get_contacts))
        .route("/v1/contacts/invites", post(post_invite))
        .route("/v1/contacts/accept", post(post_accept))
        .route("/v1/contacts/{contact}/approve", post(post_approve))
        .route(
            "/v1/contacts/{contact}",
            axum::routing::delete(delete_contact),
        )
        .route("/v1/journey", get(get_journey).post(post_journey))
        .route("/v1/journey/arrived", post(post_arrived))
        .route("/v1/journey/extend", post(post_extend))
        .route("/v1/journey/cancel", post(post_cancel_journey))
        .route("/v1/sos", get(get_sos).post(post_sos))
        .route("/v1/sos/cancel", post(post_cancel_sos))
        .route("/v1/inbox", get(get_inbox))
        .route("/v1/circle/journeys", get(get_shared_journeys))
        .route("/v1/inbox/ack", post(post_inbox_ack))
}

/// The person's code, when codes are set (or no body).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeBody {
    #[serde(default)]
    code: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetCodesBody {
    code: String,
    duress_code: String,
    #[serde(default)]
    current_code: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClearCodesBody {
    code: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    ttl_secs: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptBody {
    code: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct JourneyBody {
    lat: f64,
    lon: f64,
    #[serde(default)]
    eta_secs: Option<u64>,
    #[serde(default)]
    expected_arrival: Option<u64>,
    #[serde(default)]
    grace_secs: Option<u64>,
    /// Parents' mode: `{corridor_m, stop_secs}`.
    #[serde(default)]
    states_only: Option<StatesOnly>,
    /// The destination's name, kept on this device.
    #[serde(default)]
    destination_name: Option<String>,
}

/// "Add time": exactly one of the three.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtendBody {
    #[serde(default)]
    add_secs: Option<u64>,
    #[serde(default)]
    eta_secs: Option<u64>,
    #[serde(default)]
    expected_arrival: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SosBody {
    #[serde(default)]
    note: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    ids: Vec<u64>,
}

#[derive(Debug, Clone, Serialize)]
struct Acked {
    acked: Vec<u64>,
}

fn path_error(r: PathRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_query",
        format!("the path could not be read: {}", r.body_text()),
    )
}

fn query_pairs(
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Vec<(String, String)>, ApiError> {
    q.map(|Query(p)| p).map_err(|r| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_query",
            format!("the query string could not be read: {}", r.body_text()),
        )
    })
}

/// The one optional query parameter `name` of a request, parsed by `f`.
fn single_param<T>(
    pairs: &[(String, String)],
    name: &str,
    f: impl Fn(&str) -> Option<T>,
    expected: &str,
) -> Result<Option<T>, ApiError> {
    let mut out = None;
    for (k, v) in pairs {
        if k != name {
            return Err(ApiError::invalid(
                "unknown_field",
                format!("unknown query parameter `{k}`; only `{name}` is accepted here"),
            ));
        }
        if out.is_some() {
            return Err(ApiError::invalid(
                "invalid_field",
                format!("query parameter `{name}` is given more than once"),
            ));
        }
        out = Some(f(v.trim()).ok_or_else(|| {
            ApiError::invalid(
                "invalid_field",
                format!("query parameter `{name}` must be {expected}, not {v:?}"),
            )
        })?);
    }
    Ok(out)
}

async fn get_circle(State(s): State<AppState>) -> Result<Json<CircleStatus>, ApiError> {
    Ok(Json(s.node.circle_status().await?))
}

async fn get_contacts(State(s): State<AppState>) -> Result<Json<ContactList>, ApiError> {
    Ok(Json(s.node.contacts().await?))
}

async fn post_invite(
    State(s): State<AppState>,
    JsonOrEmpty(body): JsonOrEmpty<InviteBody>,
) -> Result<(StatusCode, Json<InviteView>), ApiError> {
    let ttl = body.ttl_secs.unwrap_or(DEFAULT_INVITE_TTL_SECS);
    let max = ronde_protocol::circle::MAX_INVITE_TTL_SECS;
    if ttl == 0 || ttl > max {
        return Err(ApiError::invalid(
            "invalid_field",
            format!("ttl_secs must be between 1 and {max} (24 hours)"),
        ));
    }
    let invite = s.node.create_invite(body.name, ttl).await?;
    Ok((StatusCode::CREATED, Json(invite)))
}

async fn post_accept(
    State(s): State<AppState>,
    JsonBody(body): JsonBody<AcceptBody>,
) -> Result<(StatusCode, Json<ContactView>), ApiError> {
    let contact = s.node.accept_invite(&body.code, body.name).await?;
    Ok((StatusCode::CREATED, Json(contact)))
}

/// `POST /v1/contacts/{contact}/approve` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    /// The safety number the person compared with the contact, in full.
    #[serde(default)]
    safety_number: String,
}

async fn post_approve(
    State(s): State<AppState>,
    contact: Result<Path<String>, PathRejection>,
    JsonOrEmpty(body): JsonOrEmpty<ApproveBody>,
) -> Result<Json<ContactView>, ApiError> {
    let Path(contact) = contact.map_err(path_error)?;
    Ok(Json(
        s.node
            .approve_contact_compared(&contact, &body.safety_number)
            .await?,
    ))
}

async fn delete_contact(
    State(s): State<AppState>,
    contact: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<ContactView>, ApiError> {
    let Path(contact) = contact.map_err(path_error)?;
    let pairs = query_pairs(query)?;
    let notify = single_param(
        &pairs,
        "notify",
        |v| match v {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        "true or false",
    )?
    .unwrap_or(false);
    Ok(Json(s.node.remove_contact(&contact, notify).await?))
}

async fn post_journey(
    State(s): State<AppState>,
    JsonBody(body): JsonBody<JourneyBody>,
) -> Result<(StatusCode, Json<JourneyView>), ApiError> {
    check_coordinates(body.lat, body.lon)?;
    let expected_arrival = match (body.eta_secs, body.expected_arrival) {
        (Some(eta), None) => s.node.now().saturating_add(eta),
        (None, Some(at)) => at,
        (None, None) => {
            return Err(ApiError::invalid(
                "missing_field",
                "give the arrival time: `eta_secs` (seconds from now) or `expected_arrival` (Unix seconds)",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "invalid_field",
                "give either `eta_secs` or `expected_arrival`, not both",
            ))
        }
    };
    let grace = body.grace_secs.unwrap_or(DEFAULT_GRACE_SECS);
    let journey = s
        .node
        .start_journey_with(
            body.lat,
            body.lon,
            expected_arrival,
            grace,
            body.states_only,
            body.destination_name,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(journey)))
}

async fn post_extend(
    State(s): State<AppState>,
    JsonBody(body): JsonBody<ExtendBody>,
) -> Result<Json<JourneyView>, ApiError> {
    let expected_arrival = match (body.add_secs, body.eta_secs, body.expected_arrival) {
        (Some(add), None, None) => s
            .node
            .journey()
            .await?
            .expected_arrival
            .saturating_add(add),
        (None, Some(eta), None) => s.node.now().saturating_add(eta),
        (None, None, Some(at)) => at,
        _ => {
            return Err(ApiError::invalid(
                "invalid_field",
                "give exactly one of `add_secs` (more time), `eta_secs` (seconds from now) or `expected_arrival` (Unix seconds)",
            ))
        }
    };
    Ok(Json(s.node.extend_journey(expected_arrival).await?))
}

async fn get_journey(State(s): State<AppState>) -> Result<Json<JourneyView>, ApiError> {
    Ok(Json(s.node.journey().await?))
}

async fn post_arrived(
    State(s): State<AppState>,
    JsonOrEmpty(body): JsonOrEmpty<CodeBody>,
) -> Result<Json<JourneyView>, ApiError> {
    Ok(Json(s.node.arrived_with_code(body.code).await?))
}

async fn post_cancel_journey(
    State(s): State<AppState>,
    JsonOrEmpty(body): JsonOrEmpty<CodeBody>,
) -> Result<Json<JourneyView>, ApiError> {
    Ok(Json(s.node.cancel_journey_with_code(body.code).await?))
}

async fn put_codes(
    State(s): State<AppState>,
    JsonBody(body): JsonBody<SetCodesBody>,
) -> Result<Json<CodesView>, ApiError> {
    let view = s
        .node
        .set_codes(body.code, body.duress_code, body.current_code)
        .await?;
    Ok(Json(view))
}

async fn delete_codes(
    State(s): State<AppState>,
    JsonBody(body): JsonBody<ClearCodesBody>,
) -> Result<Json<CodesView>, ApiError> {
    Ok(Json(s.node.clear_codes(body.code).await?))
}

async fn post_sos(
    State(s): State<AppState>,
    JsonOrEmpty(body): JsonOrEmpty<SosBody>,
) -> Result<(StatusCode, Json<SosView>), ApiError> {
    let sos = s.node.sos(body.note.as_deref().unwrap_or("")).await?;
    Ok((StatusCode::CREATED, Json(sos)))
}

async fn get_sos(State(s): State<AppState>) -> Result<Json<SosView>, ApiError> {
    Ok(Json(s.node.sos_status().await?))
}

async fn post_cancel_sos(
    State(s): State<AppState>,
    JsonOrEmpty(body): JsonOrEmpty<CodeBody>,
) -> Result<Json<SosView>, ApiError> {
    Ok(Json(s.node.cancel_sos_with_code(body.code).await?))
}

async fn get_inbox(
    State(s): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Inbox>, ApiError> {
    let pairs = query_pairs(query)?;
    let since = single_param(&pairs, "since", |v| v.parse::<u64>().ok(), "an inbox id")?;
    Ok(Json(s.node.inbox(since).await?))
}

async fn get_shared_journeys(State(s): State<AppState>) -> Result<Json<SharedJourneys>, ApiError> {
    Ok(Json(s.node.shared_journeys().await?))
}

async fn post_inbox_ack(
    State(s): State<AppState>,
    JsonBody(body): JsonBody<AckBody>,
) -> Result<Json<Acked>, ApiError> {
    if body.ids.is_empty() || body.ids.len() > MAX_ACK_IDS {
        return Err(ApiError::invalid(
            "invalid_field",
            format!("`ids` holds 1 to {MAX_ACK_IDS} inbox ids"),
        ));
    }
    let acked = s.node.ack_inbox(body.ids).await?;
    Ok(Json(Acked { acked }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_query_parameter() {
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let num = |v: &str| v.parse::<u64>().ok();
        assert_eq!(
            single_param(&pairs(&[("since", "7")]), "since", num, "n").ok(),
            Some(Some(7))
        );
        assert_eq!(
            single_param(&pairs(&[]), "since", num, "n").ok(),
            Some(None)
        );
        let code = |r: Result<Option<u64>, ApiError>| r.err().map(|e| e.code);
        assert_eq!(
            code(single_param(&pairs(&[("since", "x")]), "since", num, "n")),
            Some("invalid_field")
        );
        assert_eq!(
            code(single_param(
                &pairs(&[("since", "1"), ("since", "2")]),
                "since",
                num,
                "n"
            )),
            Some("invalid_field")
        );
        assert_eq!(
            code(single_param(&pairs(&[("limit", "1")]), "since", num, "n")),
            Some("unknown_field")
        );
    }
}
