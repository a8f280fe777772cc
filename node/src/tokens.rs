//! `/ronde/token/1` (docs/protocol.md §8.5): asking a city relay for a
//! batch of anonymous tokens, and, on a relay, handing the requests to its
//! issuer ([`TokenSink`]).
//!
//! One request per stream, read bounded before parsing
//! ([`crate::codec`]), checked with `ronde_protocol::token`'s decoders: a
//! request or response that breaks the format drops the stream. A relay's
//! node passes each request on with the **identity** of the connection it
//! came on (peer id and connection id): all its issuer may count. The
//! asking node never says which report will spend a token; the request
//! holds only blinded messages.

use std::collections::HashMap;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::FutureExt;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::{PeerId, StreamProtocol, Swarm};
use ronde_protocol::token::{IssueRequest, IssueResponse, MAX_ISSUE_REQUEST, MAX_ISSUE_RESPONSE};
use tokio::sync::{mpsc, oneshot};

use crate::behaviour::Behaviour;
use crate::codec::{invalid, Bounded, WireFormat};
use crate::error::NodeError;

/// The protocol name.
pub const TOKEN_PROTOCOL: StreamProtocol = StreamProtocol::new("/ronde/token/1");

/// The wire format of `/ronde/token/1`: an [`IssueRequest`], an
/// [`IssueResponse`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenWire;

/// Codec of `/ronde/token/1`.
pub type TokenCodec = Bounded<TokenWire>;

impl WireFormat for TokenWire {
    const PROTOCOL: StreamProtocol = TOKEN_PROTOCOL;
    const MAX_REQUEST: usize = MAX_ISSUE_REQUEST;
    const MAX_RESPONSE: usize = MAX_ISSUE_RESPONSE;
    type Request = IssueRequest;
    type Response = IssueResponse;

    fn encode_request(req: &IssueRequest) -> std::io::Result<Vec<u8>> {
        let b = req.to_bytes();
        IssueRequest::from_bytes(&b).map_err(|_| invalid("bad token request"))?;
        Ok(b)
    }
    fn decode_request(buf: &[u8]) -> std::io::Result<IssueRequest> {
        IssueRequest::from_bytes(buf).map_err(|_| invalid("bad token request"))
    }
    fn encode_response(res: &IssueResponse) -> std::io::Result<Vec<u8>> {
        let b = res.to_bytes();
        IssueResponse::from_bytes(&b).map_err(|_| invalid("bad token response"))?;
        Ok(b)
    }
    fn decode_response(buf: &[u8]) -> std::io::Result<IssueResponse> {
        IssueResponse::from_bytes(buf).map_err(|_| invalid("bad token response"))
    }
}

/// A request for tokens handed to the relay's issuer.
#[derive(Debug)]
pub struct TokenSubmission {
    /// The connection it came on (peer id and connection id): the identity
    /// a per-connection policy counts.
    pub identity: String,
    /// The request (well-formed; its proof not checked yet).
    pub request: IssueRequest,
    /// Where the answer goes (dropping it answers `Unavailable`).
    pub reply: oneshot::Sender<IssueResponse>,
}

/// Where a node that issues tokens (a city relay) sends requests: see
/// [`crate::NodeConfig::token_sink`]. When the queue is full, the asker is
/// told `Unavailable`.
pub type TokenSink = mpsc::Sender<TokenSubmission>;

type PendingAnswer = BoxFuture<'static, (ResponseChannel<IssueResponse>, IssueResponse)>;

/// The node's side of `/ronde/token/1`.
pub(crate) struct TokenService {
    sink: Option<TokenSink>,
    asking: HashMap<OutboundRequestId, oneshot::Sender<Result<IssueResponse, NodeError>>>,
    /// The issuer's answers not sent back yet.
    pub(crate) answers: FuturesUnordered<PendingAnswer>,
}

impl TokenService {
    pub(crate) fn new(sink: Option<TokenSink>) -> TokenService {
        TokenService {
            sink,
            asking: HashMap::new(),
            answers: FuturesUnordered::new(),
        }
    }

    /// Ask `peer` for tokens.
    pub(crate) fn ask(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        request: IssueRequest,
        reply: oneshot::Sender<Result<IssueResponse, NodeError>>,
    ) {
        let id = swarm.behaviour_mut().tokens.send_request(&peer, request);
        self.asking.insert(id, reply);
    }

    pub(crate) fn on_event(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        ev: request_response::Event<IssueRequest, IssueResponse>,
    ) {
        match ev {
            request_response::Event::Message {
                peer,
                connection_id,
                message,
            } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let identity = format!("{peer}/{connection_id}");
                    self.on_request(swarm, identity, request, channel);
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.asking.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(reply) = self.asking.remove(&request_id) {
                    let _ = reply.send(Err(NodeError::Transport(format!(
                        "token request failed: {error}"
                    ))));
                }
            }
            request_response::Event::InboundFailure { .. }
            | request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_request(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        identity: String,
        request: IssueRequest,
        channel: ResponseChannel<IssueResponse>,
    ) {
        let Some(sink) = &self.sink else {
            let _ = swarm
                .behaviour_mut()
                .tokens
                .send_response(channel, IssueResponse::Unavailable);
            return;
        };
        let (tx, rx) = oneshot::channel();
        match sink.try_send(TokenSubmission {
            identity,
            request,
            reply: tx,
        }) {
            Ok(()) => self.answers.push(
                async move {
                    let answer = rx.await.unwrap_or(IssueResponse::Unavailable);
                    (channel, answer)
                }
                .boxed(),
            ),
            Err(_) => {
                let _ = swarm
                    .behaviour_mut()
                    .tokens
                    .send_response(channel, IssueResponse::Unavailable);
            }
        }
    }

    /// Send the issuer's answer back.
    pub(crate) fn on_answer(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        channel: ResponseChannel<IssueResponse>,
        answer: IssueResponse,
    ) {
        let _ = swarm.behaviour_mut().tokens.send_response(channel, answer);
    }
}
