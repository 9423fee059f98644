//! RFC 3161 §3.4: the time-stamp protocol over HTTP.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};

use super::asn1::TimeStampReq;
use super::pipeline::{Job, Pipeline};
use super::plain_http::{Failure, PlainHttp, Reply};
use super::token::{ReplyChecker, imprint_of, request};
use super::{PendingToken, Token, Tsa, TsaError};

/// Largest reply read: a token with a TSA chain is a few kilobytes.
pub(super) const MAX_REPLY_BYTES: u64 = 1 << 20;
/// Pauses before the second, third and fourth attempt.
pub(super) const BACKOFF: [Duration; 3] =
    [Duration::from_millis(100), Duration::from_millis(400), Duration::from_millis(1600)];

/// Idle keep-alive connections kept to the TSA: one per thread that may be waiting on it
/// (`engine::schedule` runs 8 production threads per core when a TSA is asked for). ureq's
/// default, 3, made every thread beyond the third open and close a TCP connection per token.
const MAX_IDLE_CONNECTIONS: usize = 256;
const USER_AGENT: &str = concat!("elicence/", env!("CARGO_PKG_VERSION"));
const QUERY_TYPE: &str = "application/timestamp-query";
const REPLY_TYPE: &str = "application/timestamp-reply";

/// A TSA reached over HTTP(S), with a pooled keep-alive connection per thread of use: a plain
/// `http://` TSA through [`PlainHttp`], anything else (`https://`, redirects) through ureq.
#[derive(Debug, Clone)]
pub struct HttpTsa {
    url: String,
    plain: Option<Arc<PlainHttp>>,
    agent: ureq::Agent,
    /// The length of the largest token received ([`Tsa::largest_token_len`]).
    largest_token: Arc<AtomicUsize>,
    /// Checks every reply, parsing this TSA's certificates once.
    checker: Arc<ReplyChecker>,
    /// Decided by the first reply over plain HTTP: when its connection stays open, requests
    /// are pipelined ([`Pipeline`]) from then on; when not (or on a redirect), never.
    pipeline: Arc<OnceLock<Option<Pipeline>>>,
}

impl HttpTsa {
    /// A client for the TSA at `url` (`http://` or `https://`). Each attempt may take
    /// `timeout` in all.
    pub fn new(url: &str, timeout: Duration) -> Result<HttpTsa, TsaError> {
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return Err(TsaError::BadUrl { url: url.to_owned() });
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .user_agent(USER_AGENT)
            .max_idle_connections(MAX_IDLE_CONNECTIONS)
            .max_idle_connections_per_host(MAX_IDLE_CONNECTIONS)
            .build()
            .new_agent();
        let plain = PlainHttp::for_url(url, timeout, USER_AGENT).map(Arc::new);
        let largest_token = Arc::new(AtomicUsize::new(0));
        let checker = Arc::new(ReplyChecker::default());
        let pipeline = Arc::new(OnceLock::new());
        Ok(HttpTsa { url: url.to_owned(), plain, agent, largest_token, checker, pipeline })
    }

    fn pipeline(&self) -> Option<&Pipeline> {
        self.pipeline.get().and_then(Option::as_ref)
    }

    /// After the first reply over plain HTTP: pipelines when the server kept the connection.
    fn decide_pipelining(&self, plain: &Arc<PlainHttp>, keep_alive: bool) {
        if self.pipeline.get().is_some() {
            return;
        }
        self.pipeline.get_or_init(|| {
            if !keep_alive {
                return None;
            }
            let (checker, largest_token) = (self.checker.clone(), self.largest_token.clone());
            let check = Box::new(move |req: &TimeStampReq, reply: &[u8]| {
                let token = checker.accept(req, reply)?;
                largest_token.fetch_max(token.der.len(), Ordering::Relaxed);
                Ok(token)
            });
            Pipeline::start(plain.clone(), check, self.url.clone()).ok()
        });
    }

    /// A request for a token over `message`: the request, and its bytes (DER).
    fn query(message: &[u8]) -> Result<(TimeStampReq, Vec<u8>), TsaError> {
        let imprint = imprint_of(message)?;
        let mut nonce = [0u8; 8];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| TsaError::Encode { detail: "no random nonce".into() })?;
        request(&imprint, &nonce)
    }

    /// [`Tsa::stamp`] with a request of its own on a connection of its own (with retries).
    fn stamp_alone(&self, message: &[u8]) -> Result<Token, TsaError> {
        let (req, query) = HttpTsa::query(message)?;
        let mut last = String::new();
        for (attempt, pause) in std::iter::once(None).chain(BACKOFF.iter().map(Some)).enumerate() {
            if let Some(pause) = pause {
                std::thread::sleep(*pause);
            }
            match self.attempt(&query) {
                Ok(reply) => {
                    let token = self.checker.accept(&req, &reply)?;
                    self.largest_token.fetch_max(token.der.len(), Ordering::Relaxed);
                    return Ok(token);
                }
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry(why)) => last = format!("attempt {}: {why}", attempt + 1),
            }
        }
        Err(TsaError::Unavailable {
            url: self.url.clone(),
            attempts: BACKOFF.len() as u32 + 1,
            detail: last,
        })
    }

    fn attempt(&self, query: &[u8]) -> Result<Vec<u8>, Attempt> {
        let Some(plain) = &self.plain else { return self.attempt_with_ureq(query) };
        let reply = match plain.post(query, QUERY_TYPE, REPLY_TYPE, MAX_REPLY_BYTES as usize) {
            Ok(reply) => reply,
            Err(Failure::Redirect(_)) => {
                self.pipeline.get_or_init(|| None);
                return self.attempt_with_ureq(query);
            }
            Err(Failure::Transport(why)) => return Err(Attempt::Retry(why)),
        };
        if (200..300).contains(&reply.status) {
            self.decide_pipelining(plain, reply.keep_alive);
        }
        reply_body(reply)
    }

    /// One attempt through ureq, which speaks TLS and follows redirects.
    fn attempt_with_ureq(&self, query: &[u8]) -> Result<Vec<u8>, Attempt> {
        let response = self
            .agent
            .post(&self.url)
            .header("Content-Type", QUERY_TYPE)
            .header("Accept", REPLY_TYPE)
            .send(query);
        let mut response = match response {
            Ok(r) => r,
            Err(ureq::Error::StatusCode(code)) if code >= 500 || code == 429 => {
                return Err(Attempt::Retry(format!("HTTP {code}")));
            }
            Err(ureq::Error::StatusCode(code)) => {
                return Err(Attempt::Fatal(TsaError::BadReply { detail: format!("HTTP {code}") }));
            }
            Err(e) => return Err(Attempt::Retry(e.to_string())),
        };
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        check_content_type(content_type)?;
        response
            .body_mut()
            .with_config()
            .limit(MAX_REPLY_BYTES)
            .read_to_vec()
            .map_err(|e| Attempt::Retry(e.to_string()))
    }
}

/// The body of a plain-HTTP reply when its status and media type are a timestamp reply's.
pub(super) fn reply_body(reply: Reply) -> Result<Vec<u8>, Attempt> {
    match reply.status {
        200..=299 => {}
        code if code >= 500 || code == 429 => {
            return Err(Attempt::Retry(format!("HTTP {code}")));
        }
        code => {
            return Err(Attempt::Fatal(TsaError::BadReply { detail: format!("HTTP {code}") }));
        }
    }
    check_content_type(&reply.content_type)?;
    Ok(reply.body)
}

/// RFC 3161 §3.4: the reply's media type.
fn check_content_type(content_type: &str) -> Result<(), Attempt> {
    if content_type.starts_with(REPLY_TYPE) {
        Ok(())
    } else {
        Err(Attempt::Fatal(TsaError::BadReply {
            detail: format!("content type {content_type:?}, not {REPLY_TYPE}"),
        }))
    }
}

/// Why an attempt gave no reply body: worth another try, or not.
pub(super) enum Attempt {
    Retry(String),
    Fatal(TsaError),
}

impl Tsa for HttpTsa {
    fn stamp(&self, message: &[u8]) -> Result<Token, TsaError> {
        if self.pipeline().is_some() {
            return self.request(message).wait();
        }
        self.stamp_alone(message)
    }

    fn request(&self, message: &[u8]) -> PendingToken {
        let Some(pipeline) = self.pipeline() else {
            return PendingToken::ready(self.stamp_alone(message));
        };
        let Some(plain) = &self.plain else {
            return PendingToken::ready(self.stamp_alone(message));
        };
        let (req, query) = match HttpTsa::query(message) {
            Ok(parts) => parts,
            Err(e) => return PendingToken::ready(Err(e)),
        };
        // One slot: the one reply (a list channel would allocate a block of 31).
        let (reply, token) = mpsc::sync_channel(1);
        let http = plain.request(&query, QUERY_TYPE, REPLY_TYPE);
        if pipeline.send(Job { http, req, reply, retries: 0 }) {
            PendingToken::waiting(token, pipeline.thread().clone(), &self.url)
        } else {
            // The pipelining thread has ended (it cannot be restarted): one at a time.
            PendingToken::ready(self.stamp_alone(message))
        }
    }

    fn pipelines(&self) -> bool {
        self.pipeline().is_some()
    }

    fn url(&self) -> &str {
        &self.url
    }

    fn largest_token_len(&self) -> usize {
        self.largest_token.load(Ordering::Relaxed)
    }
}
