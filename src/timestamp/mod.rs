//! Trusted time: RFC 3161 timestamps from a time-stamping authority (TSA).
//!
//! A signature's own time (`/M`, CMS signingTime) is the signer's claim; a timestamp token is
//! a TSA's signed statement that a given hash existed at `genTime`. The signature formats ask
//! a [`Tsa`] for a token over their signature value after signing (PAdES/CAdES B-T:
//! the unsigned attribute id-aa-signatureTimeStampToken), and `verify` validates the signer's
//! certificate path at the token's time instead of its own clock when the token holds.
//!
//! [`HttpTsa`] speaks RFC 3161 §3.4 (HTTP POST `application/timestamp-query`). Every reply is
//! checked before its token is kept ([`token::accept_reply`]): status granted, the request's
//! message imprint and nonce. A TSA that cannot be reached, after retries, is
//! [`TsaError::Unavailable`]: the run stops at a chunk boundary and nothing unstamped is
//! loaded.

pub mod asn1;
mod http;
mod plain_http;
pub mod token;

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

pub use http::HttpTsa;
pub use token::{Token, imprint_of, read_token, token_certificates};

/// Where timestamps come from.
pub trait Tsa: Send + Sync + Debug {
    /// A token over the SHA-256 of `message`, checked as [`token::accept_reply`] checks it.
    fn stamp(&self, message: &[u8]) -> Result<Token, TsaError>;

    /// The TSA's address, for messages.
    fn url(&self) -> &str;

    /// The length of the largest token this TSA has returned so far, 0 before the first: a
    /// PDF reserves `/Contents` for what this TSA's tokens take rather than a generous guess
    /// (the length of a token is only known once the TSA answers).
    fn largest_token_len(&self) -> usize {
        0
    }
}

/// Why no timestamp was obtained.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TsaError {
    /// The TSA URL is not `http://` or `https://`.
    #[error("TSA address {url:?} is not an http:// or https:// URL")]
    BadUrl { url: String },
    /// No answer after every retry (connection refused, timeout, HTTP 5xx).
    #[error("TSA {url} unavailable after {attempts} attempts: {detail}")]
    Unavailable { url: String, attempts: u32, detail: String },
    /// The TSA answered with a status other than granted.
    #[error("TSA refused the request (PKIStatus {status}){}", if text.is_empty() { String::new() } else { format!(": {text}") })]
    Refused { status: u8, text: String },
    /// The reply is not an acceptable RFC 3161 response for the request.
    #[error("TSA reply rejected: {detail}")]
    BadReply { detail: String },
    /// The request could not be encoded.
    #[error("timestamp request cannot be encoded: {detail}")]
    Encode { detail: String },
}

/// How long one request to a TSA may take in all.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client for the TSA at `url`, checked by asking it for one token (so a wrong address or a
/// TSA that is down stops a run before anything is created).
pub fn connect(url: &str) -> Result<Arc<dyn Tsa>, TsaError> {
    let tsa = HttpTsa::new(url, REQUEST_TIMEOUT)?;
    tsa.stamp(b"elicence: TSA probe")?;
    Ok(Arc::new(tsa))
}
