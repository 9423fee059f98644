//! Bearer tokens for departments and operators: `base64url(claims JSON) "."
//! base64url(HMAC-SHA256)`, signed with a key drawn at random when the server starts (a restart
//! logs everyone out, which is what a short-lived token allows). The claims are the department
//! code (department routes) or the operator's name (the review routes), issue and expiry times;
//! a token is never longer-lived than [`MAX_TTL`], and one kind is never accepted for the other.
//! A valid signature is not enough: every request also checks that the department (operator)
//! is still enabled in the registry, so `elicence dept disable` (`operator disable`) cuts a
//! live token at once.
//!
//! Expiry uses the system clock, not `ELICENCE_NOW`: a pinned clock would make tokens
//! immortal in tests and in any deployment that pins it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Longest lifetime of a token (the issue: ≤ 1 h).
pub const MAX_TTL: u64 = 3600;

/// The signed content of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// The department's USCC (a department token); empty in an operator token.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dept: String,
    /// The operator's name (an operator token); empty in a department token.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub op: String,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Expires at (Unix seconds).
    pub exp: u64,
}

/// Why a presented token is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TokenError {
    #[error("no bearer token: send Authorization: Bearer TOKEN (POST /api/v1/token)")]
    Missing,
    #[error("malformed bearer token")]
    Malformed,
    #[error("bearer token signature does not verify")]
    BadSignature,
    #[error("bearer token expired")]
    Expired,
    #[error("an operator token is not accepted here: this route needs a department's token")]
    NotDepartment,
    #[error(
        "a department token is not accepted here: this route needs an operator's token (POST /api/v1/operator-token)"
    )]
    NotOperator,
}

/// Signs and checks tokens with one process-wide key.
pub struct TokenKey {
    key: ring::hmac::Key,
}

impl TokenKey {
    /// A fresh random key. Fails only when the system's random source does.
    pub fn random() -> Result<TokenKey, ring::error::Unspecified> {
        let rng = ring::rand::SystemRandom::new();
        let key = ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng)?;
        Ok(TokenKey { key })
    }

    /// A token for `dept` valid `ttl` seconds (capped at [`MAX_TTL`]) from `now`.
    pub fn issue(&self, dept: &str, now: u64, ttl: u64) -> (String, Claims) {
        let claims = Claims {
            dept: dept.to_owned(),
            op: String::new(),
            iat: now,
            exp: now + ttl.min(MAX_TTL),
        };
        self.sign(claims)
    }

    /// A token for operator `name` valid `ttl` seconds (capped at [`MAX_TTL`]) from `now`.
    pub fn issue_operator(&self, name: &str, now: u64, ttl: u64) -> (String, Claims) {
        let claims = Claims {
            dept: String::new(),
            op: name.to_owned(),
            iat: now,
            exp: now + ttl.min(MAX_TTL),
        };
        self.sign(claims)
    }

    fn sign(&self, claims: Claims) -> (String, Claims) {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let tag = ring::hmac::sign(&self.key, payload.as_bytes());
        (format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref())), claims)
    }

    /// The claims of `token` if its signature verifies (constant time) and it has not expired
    /// at `now`.
    pub fn check(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        if token.len() > 1024 {
            return Err(TokenError::Malformed);
        }
        let (payload, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| TokenError::Malformed)?;
        ring::hmac::verify(&self.key, payload.as_bytes(), &tag)
            .map_err(|_| TokenError::BadSignature)?;
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        if now >= claims.exp {
            return Err(TokenError::Expired);
        }
        if claims.dept.is_empty() == claims.op.is_empty() {
            return Err(TokenError::Malformed);
        }
        Ok(claims)
    }
}

/// Seconds since the Unix epoch, by the system clock.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_expire_and_refuse_tampering() {
        let key = TokenKey::random().unwrap();
        let (token, claims) = key.issue("11220100MB18300819", 1000, 99_999);
        assert_eq!(claims.exp, 1000 + MAX_TTL, "ttl capped at one hour");
        assert_eq!(key.check(&token, 1001), Ok(claims));
        assert_eq!(key.check(&token, 1000 + MAX_TTL), Err(TokenError::Expired));
        let other = TokenKey::random().unwrap();
        assert_eq!(other.check(&token, 1001), Err(TokenError::BadSignature));
        let (payload, tag) = token.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD
            .encode(br#"{"dept":"11220100MB1560013P","iat":1000,"exp":999999}"#.as_slice());
        assert_eq!(key.check(&format!("{forged}.{tag}"), 1001), Err(TokenError::BadSignature));
        assert_eq!(key.check(payload, 1001), Err(TokenError::Malformed));
        assert_eq!(key.check("", 1001), Err(TokenError::Malformed));
        let (op_token, op) = key.issue_operator("张伟", 1000, 60);
        assert_eq!(
            key.check(&op_token, 1001).map(|c| (c.op, c.dept)),
            Ok(("张伟".into(), "".into()))
        );
        assert_eq!(op.exp, 1060);
        // Neither or both: not a token this server signs, even with a good tag.
        let (neither, _) = key.sign(Claims { dept: "".into(), op: "".into(), iat: 1, exp: 9999 });
        assert_eq!(key.check(&neither, 1001), Err(TokenError::Malformed));
    }
}
