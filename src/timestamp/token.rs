//! Requests, replies and tokens (RFC 3161 §2.4): what a client must check in a reply before it
//! keeps the token, and what anybody can read from a token later.

use std::sync::Mutex;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, DigestAlgorithmIdentifiers, EncapsulatedContentInfo, SignedData, SignerInfos,
};
use der::asn1::{Int, OctetString};
use der::{Decode, Encode, Tag, Tagged};
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;

use super::TsaError;
use super::asn1::{
    MessageImprint, OID_SHA256, OID_SIGNED_DATA, OID_TST_INFO, PkiStatusInfo, TimeStampReq,
    TimeStampResp, TstInfo,
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
    ReplyChecker::default().accept(req, reply)
}

/// Certificate sets remembered by a [`ReplyChecker`]: a TSA sends one or two.
const KNOWN_CERTIFICATE_SETS: usize = 4;

/// Checks replies as [`accept_reply`] does, for one TSA client. A TSA sends the same
/// certificates with every token, and parsing them was most of the cost of checking a reply:
/// a checker parses a certificate set in full the first time it sees it, and after that
/// compares its bytes with the sets it has parsed. Everything else in the token is parsed
/// every time. A token of any other shape (revocation data in it, BER, trailing bytes) is
/// read by [`read_token`], which also names what is wrong with it.
#[derive(Debug, Default)]
pub struct ReplyChecker {
    known_certificates: Mutex<Vec<Vec<u8>>>,
}

impl ReplyChecker {
    /// [`accept_reply`].
    pub fn accept(&self, req: &TimeStampReq, reply: &[u8]) -> Result<Token, TsaError> {
        let refused = |detail: String| TsaError::BadReply { detail };
        let (status, token_der) = match split_reply(reply) {
            Some(parts) => parts,
            None => return accept_parsed_reply(req, reply),
        };
        let status = PkiStatusInfo::from_der(status)
            .map_err(|e| refused(format!("not a TimeStampResp: {e}")))?;
        if status.status > 1 {
            return Err(refused_status(&status));
        }
        let token_der = token_der.ok_or_else(|| refused("granted without a token".into()))?;
        let (token, nonce) = match self.read_known_shape(token_der) {
            Some(read) => read.map_err(refused)?,
            None => read_token(token_der).map(|r| (r.token, r.nonce)).map_err(refused)?,
        };
        check_token_answers(req, token, nonce.as_ref())
    }

    /// The token and its nonce when `der` has the shape a TSA's token has (ContentInfo,
    /// SignedData with certificates and no revocation data, DER throughout); `None` for any
    /// other shape. Each part is parsed as [`read_token`] parses it but the certificates, which
    /// are compared with the sets parsed before.
    fn read_known_shape(&self, der: &[u8]) -> Option<Result<(Token, Option<Int>), String>> {
        let (0x30, content_info, []) = tlv(der)? else { return None };
        let (0x06, content_type, rest) = tlv(content_info)? else { return None };
        let (0xA0, explicit, []) = tlv(rest)? else { return None };
        if content_type != OID_SIGNED_DATA.as_bytes() {
            return None;
        }
        let (0x30, signed_data, []) = tlv(explicit)? else { return None };
        let (version, rest) = split_tlv(signed_data, 0x02)?;
        let (digest_algorithms, rest) = split_tlv(rest, 0x31)?;
        let (encap, rest) = split_tlv(rest, 0x30)?;
        let (certificates, rest) = match split_tlv(rest, 0xA0) {
            Some((certificates, rest)) => (Some(certificates), rest),
            None => (None, rest),
        };
        let (signer_infos, []) = split_tlv(rest, 0x31)? else { return None };
        let parsed = (|| {
            CmsVersion::from_der(version).map_err(|e| e.to_string())?;
            DigestAlgorithmIdentifiers::from_der(digest_algorithms).map_err(|e| e.to_string())?;
            SignerInfos::from_der(signer_infos).map_err(|e| e.to_string())?;
            if let Some(certificates) = certificates {
                self.check_certificates(certificates)?;
            }
            EncapsulatedContentInfo::from_der(encap).map_err(|e| e.to_string())
        })();
        let encap = match parsed {
            Ok(encap) => encap,
            Err(e) => return Some(Err(format!("token SignedData cannot be parsed: {e}"))),
        };
        Some(
            read_encapsulated_tst_info(&encap)
                .and_then(|tst_info_der| token_of(der, &tst_info_der)),
        )
    }

    /// Parses the `[0] IMPLICIT CertificateSet` TLV `certificates` unless a set of the same
    /// bytes was parsed before.
    fn check_certificates(&self, certificates: &[u8]) -> Result<(), String> {
        let known = |known: &Vec<Vec<u8>>| known.iter().any(|set| set == certificates);
        if self.known_certificates.lock().is_ok_and(|k| known(&k)) {
            return Ok(());
        }
        // The SET OF under its implicit context tag: the same value with the universal tag.
        let mut as_set = certificates.to_vec();
        if let Some(tag) = as_set.first_mut() {
            *tag = 0x31;
        }
        CertificateSet::from_der(&as_set).map_err(|e| e.to_string())?;
        if let Ok(mut known_sets) = self.known_certificates.lock()
            && !known(&known_sets)
        {
            if known_sets.len() == KNOWN_CERTIFICATE_SETS {
                known_sets.remove(0);
            }
            known_sets.push(certificates.to_vec());
        }
        Ok(())
    }
}

/// The whole-structure check of a reply, for replies [`split_reply`] cannot take apart: the
/// same acceptance, with `der`'s own message for what is wrong.
fn accept_parsed_reply(req: &TimeStampReq, reply: &[u8]) -> Result<Token, TsaError> {
    let refused = |detail: String| TsaError::BadReply { detail };
    let resp =
        TimeStampResp::from_der(reply).map_err(|e| refused(format!("not a TimeStampResp: {e}")))?;
    if resp.status.status > 1 {
        return Err(refused_status(&resp.status));
    }
    let token = resp.time_stamp_token.ok_or_else(|| refused("granted without a token".into()))?;
    let der = token.to_der().map_err(|e| refused(e.to_string()))?;
    let parsed = read_token(&der).map_err(refused)?;
    check_token_answers(req, parsed.token, parsed.nonce.as_ref())
}

fn refused_status(status: &PkiStatusInfo) -> TsaError {
    let text: Vec<&str> = status.status_string.iter().flatten().map(|s| s.as_str()).collect();
    TsaError::Refused { status: status.status, text: text.join("; ") }
}

/// The token answers `req`: the same imprint and nonce.
fn check_token_answers(
    req: &TimeStampReq,
    token: Token,
    nonce: Option<&Int>,
) -> Result<Token, TsaError> {
    let refused = |detail: &str| TsaError::BadReply { detail: detail.to_owned() };
    if token.imprint != req.message_imprint {
        return Err(refused("the token is for another message imprint"));
    }
    if nonce != req.nonce.as_ref() {
        return Err(refused("the token's nonce is not the request's (a replayed reply?)"));
    }
    Ok(token)
}

/// A TimeStampResp's status TLV and token TLV (if any), when `reply` is one DER SEQUENCE of
/// those and nothing else; `None` otherwise.
fn split_reply(reply: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let (0x30, content, []) = tlv(reply)? else { return None };
    let (status, rest) = split_tlv(content, 0x30)?;
    match rest {
        [] => Some((status, None)),
        _ => match split_tlv(rest, 0x30)? {
            (token, []) => Some((status, Some(token))),
            _ => None,
        },
    }
}

/// The first TLV of `input` if its tag is `tag`: (the whole TLV, what follows it).
fn split_tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, _, rest) = tlv(input)?;
    (found == tag).then(|| input.split_at(input.len() - rest.len()))
}

/// The first DER TLV of `input`: (tag, content, what follows it). `None` for what DER does not
/// allow or these structures do not use: high tag numbers, indefinite or non-minimal lengths,
/// lengths past the input.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let [tag, first, rest @ ..] = input else { return None };
    if tag & 0x1F == 0x1F {
        return None;
    }
    let (len, rest) = if *first < 0x80 {
        (usize::from(*first), rest)
    } else {
        let count = usize::from(first & 0x7F);
        let bytes = rest.get(..count).filter(|b| (1..=4).contains(&b.len()) && b[0] != 0)?;
        let len = bytes.iter().fold(0usize, |len, &b| (len << 8) | usize::from(b));
        (len >= 0x80).then_some((len, &rest[count..]))?
    };
    (len <= rest.len()).then(|| (*tag, &rest[..len], &rest[len..]))
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
    let tst_info_der = read_encapsulated_tst_info(&signed_data.encap_content_info)?;
    let (token, nonce) = token_of(der, &tst_info_der)?;
    Ok(ReadToken { token, nonce, signed_data, tst_info_der })
}

/// The DER TSTInfo a SignedData encapsulates.
fn read_encapsulated_tst_info(encap: &EncapsulatedContentInfo) -> Result<Vec<u8>, String> {
    if encap.econtent_type != OID_TST_INFO {
        return Err(format!("token content is {}, not id-ct-TSTInfo", encap.econtent_type));
    }
    let econtent = encap.econtent.as_ref().ok_or("token has no TSTInfo")?;
    Ok(econtent
        .decode_as::<OctetString>()
        .map_err(|e| format!("token TSTInfo is not an OCTET STRING: {e}"))?
        .as_bytes()
        .to_vec())
}

/// The [`Token`] of the token `der` whose TSTInfo is `tst_info_der`, and the TSTInfo's nonce.
fn token_of(der: &[u8], tst_info_der: &[u8]) -> Result<(Token, Option<Int>), String> {
    let tst_info =
        TstInfo::from_der(tst_info_der).map_err(|e| format!("TSTInfo cannot be parsed: {e}"))?;
    if tst_info.version != 1 {
        return Err(format!("TSTInfo version {}", tst_info.version));
    }
    let gen_time = parse_generalized_time(&tst_info.gen_time)?;
    let token = Token {
        der: der.to_vec(),
        gen_time,
        imprint: tst_info.message_imprint,
        serial: hex::encode(tst_info.serial_number.as_bytes()),
    };
    Ok((token, tst_info.nonce))
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

    fn fixture(name: &str) -> Vec<u8> {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/timestamp").join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// What the whole-structure check says of `reply`: the token, or that it is refused.
    fn parsed(req: &TimeStampReq, reply: &[u8]) -> Option<Token> {
        accept_parsed_reply(req, reply).ok()
    }

    #[test]
    fn the_checker_accepts_what_the_whole_parse_accepts_byte_change_by_byte_change() {
        let req = TimeStampReq::from_der(&fixture("req.tsq")).expect("request fixture");
        let reply = fixture("reply.tsr");
        let checker = ReplyChecker::default();
        let token = checker.accept(&req, &reply).expect("the fixture reply is accepted");
        assert_eq!(Some(&token), parsed(&req, &reply).as_ref());
        assert_eq!(checker.known_certificates.lock().map(|k| k.len()).unwrap_or(0), 1);
        // Remembered: the same reply again takes the short path and gives the same token.
        assert_eq!(checker.accept(&req, &reply).ok(), Some(token.clone()));

        // Every one-byte change, checked by the warm checker (certificates remembered) and by a
        // fresh one, against the whole-structure parse: the same verdict and the same token.
        let mut accepted = 0;
        for at in 0..reply.len() {
            for flip in [0x01u8, 0x80, 0xFF] {
                let mut changed = reply.clone();
                changed[at] ^= flip;
                let expected = parsed(&req, &changed);
                accepted += usize::from(expected.is_some());
                assert_eq!(
                    checker.accept(&req, &changed).ok(),
                    expected,
                    "byte {at} ^ {flip:#04x}"
                );
                let fresh = ReplyChecker::default();
                assert_eq!(
                    fresh.accept(&req, &changed).ok(),
                    expected,
                    "byte {at} ^ {flip:#04x}, fresh"
                );
            }
        }
        // Changes inside the signature or the certificates leave a reply a client accepts (the
        // signature is for `verify` to check): the comparison covered both verdicts.
        assert!(accepted > 0 && accepted < 3 * reply.len(), "{accepted}");
        // Cut short anywhere: refused by both.
        for len in 0..reply.len() {
            assert_eq!(checker.accept(&req, &reply[..len]).ok(), None, "cut at {len}");
        }
        // Trailing bytes: refused by both.
        let mut longer = reply.clone();
        longer.push(0);
        assert_eq!(checker.accept(&req, &longer).ok(), parsed(&req, &longer));
        assert_eq!(parsed(&req, &longer), None);
    }

    #[test]
    fn der_lengths_are_read_as_der_writes_them() {
        assert_eq!(tlv(&[0x04, 0x01, 0xAA, 0xBB]), Some((0x04, &[0xAA][..], &[0xBB][..])));
        let long: Vec<u8> =
            [0x04, 0x81, 0x80].into_iter().chain(std::iter::repeat_n(7, 0x80)).collect();
        assert_eq!(
            tlv(&long).map(|(_, content, rest)| (content.len(), rest.len())),
            Some((0x80, 0))
        );
        for bad in [
            &[0x04, 0x81, 0x05, 1, 2, 3, 4, 5][..], // long form for a short length
            &[0x04, 0x82, 0x00, 0x80],              // a leading zero
            &[0x04, 0x80, 0x00, 0x00],              // indefinite (BER)
            &[0x04, 0x85, 1, 0, 0, 0, 0],           // more length bytes than allowed
            &[0x1F, 0x01, 0x00],                    // a high tag number
            &[0x04, 0x02, 0xAA],                    // past the input
            &[0x04],
        ] {
            assert_eq!(tlv(bad), None, "{bad:02x?}");
        }
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
