//! Fuzzes the SES V4 parsers (GB/T 38540-2020) on their own, below the zip and XML layers that
//! `fuzz_verify` must get through first: the first byte picks the structure, the rest is its
//! DER. A seal file (`Seal.esl`, `SES_Seal`) is read as [`Seal::from_der`] reads a key set's
//! seal, then every accessor a verifier or `seal show` uses runs on it (times, picture, the
//! certList, the maker's signature); a signature value (`SignedValue.dat`, `SES_Signature`) is
//! decoded and its embedded seal read the same way. Any panic is a bug: seals arrive inside
//! OFD files from outside, and every failure must come back as a `SealError` or a DER error.
#![no_main]

use der::Decode as _;
use elicence::seal::Seal;
use elicence::seal::asn1::SesSignature;
use libfuzzer_sys::fuzz_target;

fn exercise(seal: &Seal) {
    let _ = (seal.vendor(), seal.es_id(), seal.name(), seal.seal_type());
    let _ = (seal.created(), seal.valid_from(), seal.valid_to());
    let _ = seal.is_valid_at(chrono::DateTime::UNIX_EPOCH);
    let picture = seal.picture();
    let _ = (picture.format, picture.data.len());
    if let Ok(list) = seal.cert_list() {
        let _ = format!("{list:?}");
    }
    let _ = seal.names_signer(&[0x30, 0x00]);
    let _ = (seal.maker_cert_der().len(), seal.maker_signature_ok());
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    if selector & 1 == 0 {
        if let Ok(seal) = Seal::from_der(body) {
            exercise(&seal);
        }
    } else if let Ok(signature) = SesSignature::from_der(body) {
        let _ = format!("{signature:?}");
        if let Ok(seal) = Seal::from_asn1(signature.to_sign.eseal.clone()) {
            exercise(&seal);
        }
    }
});
