//! An RFC 3161 time-stamping authority on loopback, for benchmarks and tests
//! (`scripts/bench-e2e.sh --tsa`, `tests/timestamp.rs`).
//!
//! The team's test TSA (`tests/tsa/`) runs `openssl ts -reply` as a process per request, one at
//! a time (≈ 15 ms a token), so a run with `--tsa` measured that TSA, not our client. This one
//! answers `POST application/timestamp-query` concurrently, on every core, over HTTP/1.1
//! keep-alive, signing in process with OpenSSL (RSA or EC keys): a reply costs what a remote
//! TSA's would cost its own machine, a signature and a few hundred bytes of DER.
//!
//! It reads from DIR the files `tests/tsa/start.sh` writes: `tsa.key`, `tsa.pem` (the TSA
//! certificate, then any intermediates) and `ca.pem`; with `--ec`, `tsa-ec.key` and
//! `tsa-ec.pem` from `scripts/bench-tsa-keys.sh DIR` (EC P-256 under the same CA: an ECDSA
//! signature is ~20× cheaper than RSA-2048's, which a benchmark on shared cores should not pay).
//!
//! A reply (RFC 3161 §2.4.2): status granted and a token, a CMS SignedData (RFC 5652 §5) with
//! the TSTInfo encapsulated (eContentType id-ct-TSTInfo), signed attributes contentType,
//! messageDigest and signingCertificateV2 (RFC 5035), the TSA certificate when `certReq` is
//! true. A request that cannot be read or is not supported gets status rejection with a
//! failInfo, never a crash. Nothing here trusts the request beyond its length limit.
//!
//! Usage: `bench_tsa DIR PORT|ADDR [--ec]` (port 0: a free port); prints the URL on stdout,
//! then serves until killed.

#![forbid(unsafe_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use cms::builder::{create_content_type_attribute, create_message_digest_attribute};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::signed_data::CertificateSet;
use der::asn1::{Any, BitString, Int, ObjectIdentifier, OctetString, SetOfVec};
use der::{Decode, Encode, Tag};
use elicence::sign::signed_data::{
    EssCertIdV2, IssuerSerial, OID_SIGNING_CERTIFICATE_V2, SigningCertificateV2,
};
use elicence::timestamp::asn1::{
    Accuracy, OID_SHA256, OID_SIGNED_DATA, OID_TST_INFO, PkiStatusInfo, TimeStampReq,
    TimeStampResp, TstInfo,
};
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, Private};
use openssl::x509::X509;
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;

/// The policy of every token (the test TSA's, `tests/tsa/start.sh`; a private-arc OID).
pub const POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.1.1");
/// sha256WithRSAEncryption (RFC 4055 §5), parameters NULL.
const OID_SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
/// ecdsa-with-SHA256 (RFC 5758 §3.2), parameters absent.
const OID_ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
/// id-sha384 and id-sha512 (RFC 5754 §2): imprints of these are accepted too.
const OID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const OID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
/// A timestamp query is ~60 bytes; anything much larger is not one.
const MAX_QUERY_BYTES: usize = 16 * 1024;

/// PKIFailureInfo bits (RFC 3161 §2.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailInfo {
    BadAlg = 0,
    BadRequest = 2,
    BadDataFormat = 5,
    UnacceptedPolicy = 15,
    UnacceptedExtension = 16,
    SystemFailure = 25,
}

/// Why the TSA could not start.
#[derive(Debug, thiserror::Error)]
pub enum BenchTsaError {
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: not PEM that OpenSSL reads: {source}")]
    Pem { path: PathBuf, source: openssl::error::ErrorStack },
    #[error("{path}: no certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path}: the key is not the one of the first certificate in {cert}")]
    KeyMismatch { path: PathBuf, cert: PathBuf },
    #[error("{path}: key type {kind:?} (RSA or EC expected)")]
    KeyType { path: PathBuf, kind: Id },
    #[error("{path}: certificate: {source}")]
    Certificate { path: PathBuf, source: der::Error },
    #[error("cannot encode the parts every token shares: {0}")]
    Encode(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
}

/// Which key and certificate of DIR sign the tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFiles {
    /// `tsa.key`, `tsa.pem` (`tests/tsa/start.sh`: RSA-2048).
    Default,
    /// `tsa-ec.key`, `tsa-ec.pem` (`scripts/bench-tsa-keys.sh`: EC P-256).
    Ec,
}

impl KeyFiles {
    fn names(self) -> (&'static str, &'static str) {
        match self {
            KeyFiles::Default => ("tsa.key", "tsa.pem"),
            KeyFiles::Ec => ("tsa-ec.key", "tsa-ec.pem"),
        }
    }
}

/// The TSA: its key, the parts of a token that are the same in every token (DER, encoded
/// once: encoding them for every token was over a quarter of this TSA's CPU, session 20), and
/// its serial number counter.
pub struct Authority {
    key: PKey<Private>,
    /// `signatureAlgorithm` of the SignerInfo (DER AlgorithmIdentifier).
    signature_algorithm: Vec<u8>,
    /// `digestAlgorithm` of the SignerInfo and the SignedData's only digest algorithm: SHA-256
    /// (DER AlgorithmIdentifier, parameters absent).
    digest_algorithm: Vec<u8>,
    /// `sid` of the SignerInfo: the TSA certificate's issuer and serial number (DER).
    signer_id: Vec<u8>,
    /// `certificates` of the SignedData, `[0] IMPLICIT CertificateSet`: the TSA certificate
    /// and the intermediates after it (not a self-issued root), in DER SET OF order.
    certificates: Vec<u8>,
    /// The signed attributes contentType (id-ct-TSTInfo) and signingCertificateV2 naming the
    /// TSA certificate (DER Attributes); messageDigest is added per token.
    constant_attributes: [Vec<u8>; 2],
    /// The next serial number; starts at the start time in microseconds, so serial numbers
    /// also increase across restarts.
    serial: AtomicI64,
}

impl Authority {
    /// Loads the key and certificates of DIR. Fails when a file is missing or unreadable, the
    /// key is neither RSA nor EC, or the key is not the certificate's.
    pub fn load(dir: &Path, files: KeyFiles) -> Result<Authority, BenchTsaError> {
        let (key_name, cert_name) = files.names();
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| BenchTsaError::Read { path, source })
        };
        let key_path = dir.join(key_name);
        let key = PKey::private_key_from_pem(&read(key_name)?)
            .map_err(|source| BenchTsaError::Pem { path: key_path.clone(), source })?;
        let signature_algorithm = match key.id() {
            Id::RSA => {
                AlgorithmIdentifierOwned { oid: OID_SHA256_WITH_RSA, parameters: Some(Any::null()) }
            }
            Id::EC => AlgorithmIdentifierOwned { oid: OID_ECDSA_WITH_SHA256, parameters: None },
            kind => return Err(BenchTsaError::KeyType { path: key_path, kind }),
        };
        let signature_algorithm =
            signature_algorithm.to_der().map_err(|e| BenchTsaError::Encode(e.to_string()))?;
        let mut chain = Vec::new();
        for name in [cert_name, "ca.pem"] {
            let path = dir.join(name);
            let stack = X509::stack_from_pem(&read(name)?)
                .map_err(|source| BenchTsaError::Pem { path: path.clone(), source })?;
            for (i, x509) in stack.iter().enumerate() {
                if name == cert_name && i == 0 {
                    let public = x509
                        .public_key()
                        .map_err(|source| BenchTsaError::Pem { path: path.clone(), source })?;
                    if !public.public_eq(&key) {
                        return Err(BenchTsaError::KeyMismatch { path: key_path, cert: path });
                    }
                }
                let der = x509
                    .to_der()
                    .map_err(|source| BenchTsaError::Pem { path: path.clone(), source })?;
                let cert = Certificate::from_der(&der)
                    .map_err(|source| BenchTsaError::Certificate { path: path.clone(), source })?;
                let tbs = cert.tbs_certificate();
                // A verifier holds the root as its trust anchor; a token carries what leads to
                // it (RFC 3161 §2.4.1 certReq: "the TSA's certificate", others optional).
                if tbs.subject() != tbs.issuer() && !chain.contains(&cert) {
                    chain.push(cert);
                }
            }
        }
        let certificate = chain
            .first()
            .cloned()
            .ok_or_else(|| BenchTsaError::NoCertificate { path: dir.join(cert_name) })?;
        let encoded = (|| -> Result<_, Box<dyn std::error::Error>> {
            let tbs = certificate.tbs_certificate();
            let signer_id = IssuerAndSerialNumber {
                issuer: tbs.issuer().clone(),
                serial_number: tbs.serial_number().clone(),
            }
            .to_der()?;
            let mut set = SetOfVec::new();
            for cert in chain {
                set.insert(CertificateChoices::Certificate(cert))?;
            }
            // [0] IMPLICIT: the SET OF's encoding with its tag replaced (the length stays).
            let mut certificates = CertificateSet(set).to_der()?;
            if let Some(tag) = certificates.first_mut() {
                *tag = 0xA0;
            }
            let content_type = create_content_type_attribute(OID_TST_INFO)?.to_der()?;
            let signing_certificate = signing_certificate_attribute(&certificate)?.to_der()?;
            let digest_algorithm =
                AlgorithmIdentifierOwned { oid: OID_SHA256, parameters: None }.to_der()?;
            Ok((signer_id, certificates, [content_type, signing_certificate], digest_algorithm))
        })();
        let (signer_id, certificates, constant_attributes, digest_algorithm) =
            encoded.map_err(|e| BenchTsaError::Encode(e.to_string()))?;
        let start = chrono::Utc::now().timestamp_micros();
        Ok(Authority {
            key,
            signature_algorithm,
            digest_algorithm,
            signer_id,
            certificates,
            constant_attributes,
            serial: AtomicI64::new(start),
        })
    }

    /// The DER TimeStampResp for the DER `query`: granted with a token, or rejected with a
    /// failInfo. `Err` only when not even a rejection can be encoded.
    pub fn answer(&self, query: &[u8]) -> Result<Vec<u8>, der::Error> {
        let (status, token) = match self.token_for(query) {
            Ok(token) => (PkiStatusInfo { status: 0, status_string: None, fail_info: None }, token),
            Err((fail, text)) => (
                PkiStatusInfo {
                    // rejection
                    status: 2,
                    status_string: Some(vec![text]),
                    fail_info: Some(fail_info_bits(fail)?),
                },
                None,
            ),
        };
        TimeStampResp { status, time_stamp_token: token }.to_der()
    }

    /// The token (CMS ContentInfo) for `query`, or why not.
    fn token_for(&self, query: &[u8]) -> Result<Option<Any>, (FailInfo, String)> {
        let req = TimeStampReq::from_der(query)
            .map_err(|e| (FailInfo::BadDataFormat, format!("not a TimeStampReq: {e}")))?;
        if req.version != 1 {
            return Err((FailInfo::BadRequest, format!("version {}", req.version)));
        }
        let imprint = &req.message_imprint;
        let expected_len = match imprint.hash_algorithm.oid {
            OID_SHA256 => 32,
            OID_SHA384 => 48,
            OID_SHA512 => 64,
            other => return Err((FailInfo::BadAlg, format!("hash algorithm {other}"))),
        };
        // RFC 5754 §2: parameters absent (or NULL, which older clients send).
        if imprint.hash_algorithm.parameters.as_ref().is_some_and(|p| p != &Any::null()) {
            return Err((FailInfo::BadAlg, "hash algorithm parameters".into()));
        }
        if imprint.hashed_message.as_bytes().len() != expected_len {
            return Err((FailInfo::BadDataFormat, "hashed message of the wrong length".into()));
        }
        if req.req_policy.is_some_and(|p| p != POLICY) {
            return Err((FailInfo::UnacceptedPolicy, format!("policy {POLICY} only")));
        }
        if req.extensions.is_some() {
            return Err((FailInfo::UnacceptedExtension, "no extensions supported".into()));
        }
        let system = |e: &dyn std::fmt::Display| (FailInfo::SystemFailure, e.to_string());
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        let tst_info = TstInfo {
            version: 1,
            policy: POLICY,
            message_imprint: req.message_imprint.clone(),
            serial_number: Int::try_from(serial).map_err(|e| system(&e))?,
            gen_time: generalized_time(chrono::Utc::now()).map_err(|e| system(&e))?,
            accuracy: Some(Accuracy { seconds: Some(1), millis: None, micros: None }),
            ordering: None,
            nonce: req.nonce.clone(),
            tsa: None,
            extensions: None,
        };
        let tst_info_der = tst_info.to_der().map_err(|e| system(&e))?;
        let content_info =
            self.signed_data(tst_info_der, req.cert_req == Some(true)).map_err(|e| system(&e))?;
        Ok(Some(content_info))
    }

    /// RFC 3161 §2.4.2 / RFC 5652 §5: SignedData with the TSTInfo encapsulated, one SignerInfo,
    /// written as DER from the parts encoded at load and the few that change per token.
    fn signed_data(&self, tst_info_der: Vec<u8>, with_certificate: bool) -> Result<Any, String> {
        let der_err = |e: der::Error| e.to_string();
        let digest = Sha256::digest(&tst_info_der);
        // RFC 5652 §5.3: with an eContentType other than id-data, the signed attributes must
        // be present and carry contentType and messageDigest; RFC 3161 §2.4.2 (as updated by
        // RFC 5816) adds ESS signingCertificate(V2), which `openssl ts -verify` requires.
        let message_digest = create_message_digest_attribute(&digest)
            .map_err(|e| e.to_string())?
            .to_der()
            .map_err(der_err)?;
        let [content_type, signing_certificate] = &self.constant_attributes;
        let mut attributes: [&[u8]; 3] = [content_type, &message_digest, signing_certificate];
        // DER SET OF: the elements in ascending order of their encodings (X.690 §11.6).
        attributes.sort();
        let attributes = attributes.concat();
        // RFC 5652 §5.4: the signature is over the DER SET OF, not the [0] IMPLICIT form.
        let signature = openssl::sign::Signer::new(MessageDigest::sha256(), &self.key)
            .and_then(|mut signer| signer.sign_oneshot_to_vec(&with_tag(0x31, &attributes)))
            .map_err(|e| e.to_string())?;
        // SignerInfo (RFC 5652 §5.3): version 1 (issuerAndSerialNumber), sid, digestAlgorithm,
        // [0] IMPLICIT signedAttrs, signatureAlgorithm, signature.
        let signer_info = with_tag(
            0x30,
            &[
                &[0x02, 0x01, 0x01][..],
                &self.signer_id,
                &self.digest_algorithm,
                &with_tag(0xA0, &attributes),
                &self.signature_algorithm,
                &with_tag(0x04, &signature),
            ]
            .concat(),
        );
        let encapsulated = with_tag(
            0x30,
            &[
                &OID_TST_INFO.to_der().map_err(der_err)?[..],
                &with_tag(0xA0, &with_tag(0x04, &tst_info_der)),
            ]
            .concat(),
        );
        let certificates: &[u8] = if with_certificate { &self.certificates } else { &[] };
        // SignedData (RFC 5652 §5.1): version 3 (eContentType is not id-data), the digest
        // algorithms, the encapsulated TSTInfo, the certificates, the signer infos.
        let signed_data = with_tag(
            0x30,
            &[
                &[0x02, 0x01, 0x03][..],
                &with_tag(0x31, &self.digest_algorithm),
                &encapsulated,
                certificates,
                &with_tag(0x31, &signer_info),
            ]
            .concat(),
        );
        let content_info = with_tag(
            0x30,
            &[&OID_SIGNED_DATA.to_der().map_err(der_err)?[..], &with_tag(0xA0, &signed_data)]
                .concat(),
        );
        Any::from_der(&content_info).map_err(der_err)
    }
}

/// The DER TLV of `tag` (one byte: universal or context class, low tag numbers) around
/// `content`, the length in the shortest form (X.690 §10.1).
fn with_tag(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// signingCertificateV2 (RFC 5035 §3) with one ESSCertIDv2: SHA-256 (the default, so left
/// out) of the certificate, and its issuer and serial number.
fn signing_certificate_attribute(certificate: &Certificate) -> Result<Attribute, der::Error> {
    let tbs = certificate.tbs_certificate();
    let value = SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            hash_algorithm: None,
            cert_hash: OctetString::new(Sha256::digest(certificate.to_der()?).to_vec())?,
            issuer_serial: Some(IssuerSerial {
                issuer: vec![GeneralName::DirectoryName(tbs.issuer().clone())],
                serial_number: tbs.serial_number().clone(),
            }),
        }],
        policies: None,
    };
    let mut values = SetOfVec::new();
    values.insert(Any::encode_from(&value)?)?;
    Ok(Attribute { oid: OID_SIGNING_CERTIFICATE_V2, values })
}

/// genTime (RFC 3161 §2.4.2): `YYYYMMDDhhmmss[.f…]Z` in UTC, milliseconds without trailing
/// zeros (none at all on a whole second), as DER requires of a GeneralizedTime.
fn generalized_time(now: chrono::DateTime<chrono::Utc>) -> Result<Any, der::Error> {
    let mut text = now.format("%Y%m%d%H%M%S").to_string();
    let millis = now.timestamp_subsec_millis();
    if millis > 0 {
        let fraction = format!("{millis:03}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push('Z');
    Any::new(Tag::GeneralizedTime, text.into_bytes())
}

/// A PKIFailureInfo BIT STRING with the one bit `fail` set (DER: no trailing zero bits).
fn fail_info_bits(fail: FailInfo) -> Result<BitString, der::Error> {
    let bit = fail as usize;
    let mut bytes = vec![0u8; bit / 8 + 1];
    if let Some(last) = bytes.last_mut() {
        *last = 0x80 >> (bit % 8);
    }
    BitString::new((7 - bit % 8) as u8, bytes)
}

/// The HTTP side (RFC 3161 §3.4).
pub fn router(authority: Arc<Authority>) -> Router {
    Router::new()
        .route("/", post(stamp))
        .layer(DefaultBodyLimit::max(MAX_QUERY_BYTES))
        .with_state(authority)
}

async fn stamp(
    State(authority): State<Arc<Authority>>,
    headers: HeaderMap,
    query: Bytes,
) -> Response {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if content_type != Some("application/timestamp-query") {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "application/timestamp-query expected\n")
            .into_response();
    }
    // Signed on the async worker itself: one ECDSA signature (~30 µs) or RSA-2048 one
    // (~0.5 ms) is shorter than a hop to the blocking pool would be worth, and the runtime has
    // a worker per core.
    match authority.answer(&query) {
        Ok(reply) => {
            ([(header::CONTENT_TYPE, "application/timestamp-reply")], reply).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

/// A TSA serving on its own runtime thread; stopped (gracefully) when dropped.
pub struct RunningTsa {
    /// `http://ADDR/`, the URL to pass to `--tsa`.
    pub url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl RunningTsa {
    /// Serves until the server fails (it does not stop on its own).
    pub fn wait(mut self) -> std::io::Result<()> {
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(std::io::Error::other("the TSA thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for RunningTsa {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Starts serving `authority` on `addr` (port 0: a free port) with a multi-threaded runtime
/// (a worker per core), HTTP/1.1 keep-alive and TCP_NODELAY. Returns once the port is bound.
pub fn start(authority: Authority, addr: SocketAddr) -> Result<RunningTsa, BenchTsaError> {
    let listen = |source| BenchTsaError::Listen { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(listen)?;
    listener.set_nonblocking(true).map_err(listen)?;
    let bound = listener.local_addr().map_err(listen)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bench-tsa")
        .build()
        .map_err(listen)?;
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = router(Arc::new(authority));
    let thread = std::thread::spawn(move || {
        runtime.block_on(async move {
            // Small request, small reply, each in one write: without TCP_NODELAY a keep-alive
            // connection can wait for delayed ACKs between them.
            let listener = tokio::net::TcpListener::from_std(listener)?.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        })
    });
    Ok(RunningTsa {
        url: format!("http://{bound}/"),
        shutdown: Some(shutdown),
        thread: Some(thread),
    })
}

/// `PORT` means 127.0.0.1:PORT; anything else must be a socket address.
fn parse_addr(text: &str) -> Result<SocketAddr, std::net::AddrParseError> {
    match text.parse::<u16>() {
        Ok(port) => Ok(SocketAddr::from(([127, 0, 0, 1], port))),
        Err(_) => text.parse(),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: bench_tsa DIR PORT|ADDR [--ec]";
    let mut positional = Vec::new();
    let mut files = KeyFiles::Default;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--ec" => files = KeyFiles::Ec,
            "-h" | "--help" => return Err(usage.into()),
            _ => positional.push(arg),
        }
    }
    let [dir, addr] = positional.as_slice() else { return Err(usage.into()) };
    let authority = Authority::load(Path::new(dir), files)?;
    let running = start(authority, parse_addr(addr)?)?;
    let mut out = std::io::stdout();
    writeln!(out, "{}", running.url)?;
    out.flush()?;
    running.wait()?;
    Ok(())
}
