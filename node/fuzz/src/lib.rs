//! The one harness every node codec target runs: the bytes a peer sends on
//! a request-response stream, read as the codec reads them.
//!
//! The first byte picks the side (even: a request, odd: a response); the
//! rest is the message, cut to the format's bound as the codec cuts it
//! (`ronde_node::codec::Bounded` refuses longer messages before decoding).
//! Decoding must give a clean `Ok` or `Err`, never a panic; what decodes
//! must encode again, and decode to the same value.

use std::fmt::Debug;

use ronde_node::codec::{StreamProtocol, WireFormat};

/// Run one input through `W`'s decoders and check the round trip.
pub fn round_trip<W: WireFormat>(data: &[u8])
where
    W::Request: PartialEq + Debug,
    W::Response: PartialEq + Debug,
{
    round_trip_on::<W>(&W::PROTOCOL, data);
}

/// The same on one version of the protocol (`W::PROTOCOL` or one of
/// `W::OLDER`), whose requests and responses may be framed differently.
pub fn round_trip_on<W: WireFormat>(protocol: &StreamProtocol, data: &[u8])
where
    W::Request: PartialEq + Debug,
    W::Response: PartialEq + Debug,
{
    let Some((&side, rest)) = data.split_first() else {
        return;
    };
    if side % 2 == 0 {
        let bytes = &rest[..rest.len().min(W::MAX_REQUEST)];
        if let Ok(req) = W::decode_request_on(protocol, bytes) {
            let again = W::encode_request_on(protocol, &req).expect("what decodes must encode");
            assert!(again.len() <= W::MAX_REQUEST, "encoded over the bound");
            assert_eq!(
                W::decode_request_on(protocol, &again).expect("re-decodes"),
                req
            );
        }
    } else {
        let bytes = &rest[..rest.len().min(W::MAX_RESPONSE)];
        if let Ok(res) = W::decode_response_on(protocol, bytes) {
            let again = W::encode_response_on(protocol, &res).expect("what decodes must encode");
            assert!(again.len() <= W::MAX_RESPONSE, "encoded over the bound");
            assert_eq!(
                W::decode_response_on(protocol, &again).expect("re-decodes"),
                res
            );
        }
    }
}
