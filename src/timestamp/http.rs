//! RFC 3161 §3.4: the time-stamp protocol over HTTP.

use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};

use super::token::{accept_reply, imprint_of, request};
use super::{Token, Tsa, TsaError};

/// Largest reply read: a token with a TSA chain is a few kilobytes.
const MAX_REPLY_BYTES: u64 = 1 << 20;
/// Pauses before the second, third and fourth attempt.
const BACKOFF: [Duration; 3] =
    [Duration::from_millis(100), Duration::from_millis(400), Duration::from_millis(1600)];

/// A TSA reached over HTTP(S), with a pooled keep-alive connection per thread of use.
#[derive(Debug, Clone)]
pub struct HttpTsa {
    url: String,
    agent: ureq::Agent,
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
            .user_agent(concat!("elicence/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Ok(HttpTsa { url: url.to_owned(), agent })
    }

    fn attempt(&self, query: &[u8]) -> Result<Vec<u8>, Attempt> {
        let response = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/timestamp-query")
            .header("Accept", "application/timestamp-reply")
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
            .unwrap_or_default()
            .to_owned();
        if !content_type.starts_with("application/timestamp-reply") {
            return Err(Attempt::Fatal(TsaError::BadReply {
                detail: format!("content type {content_type:?}, not application/timestamp-reply"),
            }));
        }
        response
            .body_mut()
            .with_config()
            .limit(MAX_REPLY_BYTES)
            .read_to_vec()
            .map_err(|e| Attempt::Retry(e.to_string()))
    }
}

enum Attempt {
    Retry(String),
    Fatal(TsaError),
}

impl Tsa for HttpTsa {
    fn stamp(&self, message: &[u8]) -> Result<Token, TsaError> {
        let imprint = imprint_of(message)?;
        let mut nonce = [0u8; 8];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| TsaError::Encode { detail: "no random nonce".into() })?;
        let (req, query) = request(&imprint, &nonce)?;
        let mut last = String::new();
        for (attempt, pause) in std::iter::once(None).chain(BACKOFF.iter().map(Some)).enumerate() {
            if let Some(pause) = pause {
                std::thread::sleep(*pause);
            }
            match self.attempt(&query) {
                Ok(reply) => return accept_reply(&req, &reply),
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

    fn url(&self) -> &str {
        &self.url
    }
}
