//! Requests, replies and tokens (RFC 3161 §2.4): what a client must check in a reply before it
//! keeps the token, and what anybody can read from a token later.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use der::asn1::{Int, OctetString};
use der::{Decode, Encode, Tag, Tagged};
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;

use super::TsaError;
use super::asn1::{
    MessageImprint, OID_SHA256, OID_SIGNED_DATA, OID_TST_INFO, TimeStampReq, TimeStampResp, TstInfo,
};

/// A SHA-256 imprint of `message` (RFC 3161 §2.4.1; parameters absent, RFC 5754 §2).
pub fn imprint_of(message: &[u8]) -> Result<MessageImprint, TsaError> {
    let hash_algorithm = AlgorithmIdentifierOwned { oid: OID_SHA256, parameters: None };
    let hashed_message = OctetString::new(Sha256::digest(message).to_vec())
        .map_err(|e| TsaError::Encode { detail: e.to_string() })?;
    Ok(MessageImprint { hash_algorithm, hashed_message })
}

/// A request for `imprint` asking for the TSA's certificate (so the token verifies on its
/// own) with a nonce made of 8 random bytes.
pub fn request(
    imprint: &MessageImprint,
    random: &[u8; 8],
) -> Result<(TimeStampReq, Vec<u8>), TsaError> {
    // A DER INTEGER is minimal and here positive: the first byte in 0x40..=0x7F (62 random
    // bits). OpenSSL refuses a request whose nonce has a redundant leading zero.
    let mut nonce = *random;
    nonce[0] = (nonce[0] & 0x3F) | 0x40;
    let nonce = Int::new(&nonce).map_err(|e| TsaError::Encode { detail: e.to_string() })?;
    let req = TimeStampReq {
        version: 1,
        message_imprint: imprint.clone(),
        req_policy: None,
        nonce: Some(nonce),
        cert_req: Some(true),
        extensions: None,
    };
    let der = req.to_der().map_err(|e| TsaError::Encode { detail: e.to_string() })?;
    Ok((req, der))
}

/// A timestamp token: the DER `ContentInfo` a TSA returned, with what was read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// DER of the CMS `ContentInfo` (SignedData over a TSTInfo).
    pub der: Vec<u8>,
    /// The TSA's time (`genTime`).
    pub gen_time: DateTime<Utc>,
    /// The imprint the TSA signed.
    pub imprint: MessageImprint,
    /// The token's serial number, hex.
    pub serial: String,
}

/// Checks a TSA's reply to `req` (RFC 3161 §2.4.2): status granted, a token whose TSTInfo
/// carries the request's imprint and nonce. The token's signature and the TSA's certificate
/// are checked by whoever relies on it (`verify`), against the trust anchors they choose.
pub fn accept_reply(req: &TimeStampReq, reply: &[u8]) -> Result<Token, TsaError> {
    let refused = |detail: String| TsaError::BadReply { detail };
    let resp =
        TimeStampResp::from_der(reply).map_err(|e| refused(format!("not a TimeStampResp: {e}")))?;
    if resp.status.status > 1 {
        let text: Vec<&str> =
            resp.status.status_string.iter().flatten().map(|s| s.as_str()).collect();
        return Err(TsaError::Refused { status: resp.status.status, text: text.join("; ") });
    }
    let token = resp.time_stamp_token.ok_or_else(|| refused("granted without a token".into()))?;
    let der = token.to_der().map_err(|e| refused(e.to_string()))?;
    let parsed = read_token(&der).map_err(refused)?;
    if parsed.token.imprint != req.message_imprint {
        return Err(refused("the token is for another message imprint".into()));
    }
    if parsed.nonce != req.nonce {
        return Err(refused("the token's nonce is not the request's (a replayed reply?)".into()));
    }
    Ok(parsed.token)
}

/// What [`read_token`] finds besides the [`Token`].
pub struct ReadToken {
    pub token: Token,
    pub nonce: Option<Int>,
    pub signed_data: SignedData,
    /// DER of the TSTInfo (the encapsulated content the TSA signed).
    pub tst_info_der: Vec<u8>,
}

/// Parses a token (CMS ContentInfo DER) down to its TSTInfo. `Err` says what is wrong.
pub fn read_token(der: &[u8]) -> Result<ReadToken, String> {
    let content_info =
        ContentInfo::from_der(der).map_err(|e| format!("token is not a CMS ContentInfo: {e}"))?;
    if content_info.content_type != OID_SIGNED_DATA {
        return Err("token is not CMS SignedData".into());
    }
    let signed_data: SignedData = content_info
        .content
        .decode_as()
        .map_err(|e| format!("token SignedData cannot be parsed: {e}"))?;
    let encap = &signed_data.encap_content_info;
    if encap.econtent_type != OID_TST_INFO {
        return Err(format!("token content is {}, not id-ct-TSTInfo", encap.econtent_type));
    }
    let econtent = encap.econtent.as_ref().ok_or("token has no TSTInfo")?;
    let tst_info_der = econtent
        .decode_as::<OctetString>()
        .map_err(|e| format!("token TSTInfo is not an OCTET STRING: {e}"))?
        .as_bytes()
        .to_vec();
    let tst_info =
        TstInfo::from_der(&tst_info_der).map_err(|e| format!("TSTInfo cannot be parsed: {e}"))?;
    if tst_info.version != 1 {
        return Err(format!("TSTInfo version {}", tst_info.version));
    }
    let gen_time = parse_generalized_time(&tst_info.gen_time)?;
    let token = Token {
        der: der.to_vec(),
        gen_time,
        imprint: tst_info.message_imprint.clone(),
        serial: hex::encode(tst_info.serial_number.as_bytes()),
    };
    Ok(ReadToken { token, nonce: tst_info.nonce, signed_data, tst_info_der })
}

/// The certificates a token carries (the TSA's, and its issuers when the TSA sends them);
/// empty when the token cannot be read.
pub fn token_certificates(der: &[u8]) -> Vec<x509_cert::Certificate> {
    let Ok(read) = read_token(der) else { return Vec::new() };
    read.signed_data
        .certificates
        .iter()
        .flat_map(|set| set.0.iter())
        .filter_map(|choice| match choice {
            cms::cert::CertificateChoices::Certificate(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

/// A GeneralizedTime as RFC 3161 §2.4.2 allows it: `YYYYMMDDhhmmss[.s…]Z` (UTC, no
/// trailing zeros in the fraction). Fractions are kept to the nanosecond.
pub fn parse_generalized_time(value: &der::asn1::Any) -> Result<DateTime<Utc>, String> {
    if value.tag() != Tag::GeneralizedTime {
        return Err(format!("genTime is {}, not a GeneralizedTime", value.tag()));
    }
    let text = std::str::from_utf8(value.value()).map_err(|_| "genTime is not ASCII")?;
    let bad = || format!("genTime {text:?} is not YYYYMMDDhhmmss[.fff]Z");
    let body = text.strip_suffix('Z').ok_or_else(bad)?;
    let (whole, fraction) = match body.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (body, None),
    };
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let field =
        |range: std::ops::Range<usize>| whole.get(range).and_then(|s| s.parse::<u32>().ok());
    let year = field(0..4).and_then(|y| i32::try_from(y).ok()).ok_or_else(bad)?;
    let date =
        NaiveDate::from_ymd_opt(year, field(4..6).ok_or_else(bad)?, field(6..8).ok_or_else(bad)?)
            .ok_or_else(bad)?;
    let nanos = match fraction {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            let padded = format!("{f:0<9}");
            padded.parse::<u32>().map_err(|_| bad())?
        }
        Some(_) => return Err(bad()),
    };
    let time = date
        .and_hms_nano_opt(
            field(8..10).ok_or_else(bad)?,
            field(10..12).ok_or_else(bad)?,
            field(12..14).ok_or_else(bad)?,
            nanos,
        )
        .ok_or_else(bad)?;
    Ok(Utc.from_utc_datetime(&time))
}

#[cfg(test)]
mod tests {
    use der::asn1::Any;

    use super::*;

    fn generalized(text: &str) -> Any {
        Any::new(Tag::GeneralizedTime, text.as_bytes()).unwrap_or_else(|_| Any::null())
    }

    #[test]
    fn generalized_time_with_and_without_fraction() {
        let at = |s: &str| parse_generalized_time(&generalized(s)).map(|t| t.to_rfc3339());
        assert_eq!(at("20261205061530Z").as_deref(), Ok("2026-12-05T06:15:30+00:00"));
        assert_eq!(at("20261205061530.25Z").as_deref(), Ok("2026-12-05T06:15:30.250+00:00"));
        for bad in ["20261205061530", "2026120506153Z", "20261305061530Z", "20261205061530.Z"] {
            assert!(at(bad).is_err(), "{bad}");
        }
        let utc =
            Any::new(Tag::UtcTime, b"261205061530Z".as_slice()).unwrap_or_else(|_| Any::null());
        assert!(parse_generalized_time(&utc).is_err());
    }

    #[test]
    fn request_is_der_with_nonce_and_cert_req() -> Result<(), Box<dyn std::error::Error>> {
        let imprint = imprint_of(b"signature value")?;
        let (req, der) = request(&imprint, &[0xFF; 8])?;
        let back = TimeStampReq::from_der(&der)?;
        assert_eq!(back, req);
        assert_eq!(back.cert_req, Some(true));
        // The nonce is positive and minimal whatever the random bytes.
        for random in [[0xFF; 8], [0; 8]] {
            let (req, _) = request(&imprint, &random)?;
            let first = req.nonce.as_ref().and_then(|n| n.as_bytes().first().copied());
            assert_eq!(first.map(|b| b & 0xC0), Some(0x40));
        }
        Ok(())
    }

    #[test]
    fn garbage_replies_are_named_errors() {
        let Ok((req, _)) = imprint_of(b"x").and_then(|i| request(&i, &[1; 8])) else {
            panic!("request");
        };
        for reply in [&b""[..], b"\x30\x03\x02\x01\x00", &[0xFF; 40]] {
            assert!(accept_reply(&req, reply).is_err(), "{reply:?}");
        }
        // status rejection (2) with a text
        let rejected = b"\x30\x0b\x30\x09\x02\x01\x02\x30\x04\x0c\x02no";
        match accept_reply(&req, rejected) {
            Err(TsaError::Refused { status: 2, text }) => assert_eq!(text, "no"),
            other => panic!("{other:?}"),
        }
    }
}
