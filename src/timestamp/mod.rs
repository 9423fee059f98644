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
mod pipeline;
mod plain_http;
pub mod token;

use std::fmt::Debug;
use std::sync::{Arc, mpsc};
use std::thread::Thread;
use std::time::Duration;

pub use http::HttpTsa;
pub use token::{Token, imprint_of, read_token, token_certificates};

/// Where timestamps come from.
pub trait Tsa: Send + Sync + Debug {
    /// A token over the SHA-256 of `message`, checked as [`token::accept_reply`] checks it.
    fn stamp(&self, message: &[u8]) -> Result<Token, TsaError>;

    /// Asks for a token over the SHA-256 of `message` and returns before it arrives when this
    /// TSA pipelines its requests ([`Tsa::pipelines`]): a signer asks for the tokens of a whole
    /// chunk of licences, goes on rendering, and collects them with [`PendingToken::wait`].
    /// Otherwise (the default), the token is asked for now, as [`Tsa::stamp`] does.
    fn request(&self, message: &[u8]) -> PendingToken {
        PendingToken::ready(self.stamp(message))
    }

    /// Whether [`Tsa::request`] returns before the token arrives, so that no thread needs to
    /// wait on the TSA while others render.
    fn pipelines(&self) -> bool {
        false
    }

    /// The TSA's address, for messages.
    fn url(&self) -> &str;

    /// The length of the largest token this TSA has returned so far, 0 before the first: a
    /// PDF reserves `/Contents` for what this TSA's tokens take rather than a generous guess
    /// (the length of a token is only known once the TSA answers).
    fn largest_token_len(&self) -> usize {
        0
    }
}

/// A token asked for with [`Tsa::request`].
#[derive(Debug)]
pub struct PendingToken(Pending);

#[derive(Debug)]
enum Pending {
    Ready(Result<Token, TsaError>),
    /// The client's thread (`Thread`, woken when the token is awaited) sends the checked
    /// token (or why there is none); `String` is the TSA's address, for the error when that
    /// thread has gone.
    Waiting(mpsc::Receiver<Result<Token, TsaError>>, Thread, String),
}

impl PendingToken {
    /// A token (or a failure) already at hand.
    pub fn ready(token: Result<Token, TsaError>) -> PendingToken {
        PendingToken(Pending::Ready(token))
    }

    fn waiting(
        reply: mpsc::Receiver<Result<Token, TsaError>>,
        client: Thread,
        url: &str,
    ) -> PendingToken {
        PendingToken(Pending::Waiting(reply, client, url.to_owned()))
    }

    /// The token, waiting for it if it has not arrived (each reply is awaited at most
    /// [`REQUEST_TIMEOUT`] per attempt by the client).
    pub fn wait(self) -> Result<Token, TsaError> {
        match self.0 {
            Pending::Ready(token) => token,
            Pending::Waiting(reply, client, url) => {
                let token = match reply.try_recv() {
                    Ok(token) => Ok(token),
                    Err(_) => {
                        // Needed now: the client stops gathering requests and sends them.
                        client.unpark();
                        reply.recv()
                    }
                };
                token.unwrap_or_else(|_| {
                    Err(TsaError::Unavailable {
                        url,
                        attempts: 0,
                        detail: "the TSA client stopped before answering".into(),
                    })
                })
            }
        }
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
