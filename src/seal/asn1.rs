//! The SES V4 structures of GB/T 38540-2020 (安全电子签章密码技术规范) as DER types. Field
//! names follow the standard (and ofdrw `ofdrw-gm/.../ses/v4`, which implements it); every
//! type is strict DER both ways, so a decoded structure re-encodes to the bytes it came from.

use der::Sequence;
use der::asn1::{Any, BitString, GeneralizedTime, Ia5String, ObjectIdentifier, OctetString};

/// `SES_Header ::= SEQUENCE { ID IA5String ("ES"), version INTEGER (4), Vid IA5String }`
/// (GB/T 38540-2020).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SesHeader {
    pub id: Ia5String,
    pub version: u32,
    pub vid: Ia5String,
}

/// `SES_ESPropertyInfo ::= SEQUENCE { type INTEGER, name UTF8String, certListType INTEGER,
/// certList SES_CertList, createDate, validStart, validEnd GeneralizedTime }`.
/// `certList` is a CHOICE selected by `certListType` (1: certificates, 2: digests), kept as
/// [`Any`] here and read by [`super::CertList`].
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SesEsPropertyInfo {
    pub seal_type: u32,
    pub name: String,
    pub cert_list_type: u32,
    pub cert_list: Any,
    pub create_date: GeneralizedTime,
    pub valid_start: GeneralizedTime,
    pub valid_end: GeneralizedTime,
}

/// `CertDigestObj ::= SEQUENCE { type PrintableString, value OCTET STRING }`, an
/// element of `certList` when `certListType` is 2.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct CertDigestObj {
    pub digest_type: der::asn1::PrintableString,
    pub value: OctetString,
}

/// `SES_ESPictrueInfo ::= SEQUENCE { type IA5String, data OCTET STRING, width INTEGER,
/// height INTEGER }`(the standard spells it "Pictrue"); width and height in mm.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SesEsPictureInfo {
    pub picture_type: Ia5String,
    pub data: OctetString,
    pub width: u32,
    pub height: u32,
}

/// `SES_SealInfo ::= SEQUENCE { header, esID IA5String, property, picture,
/// extDatas ExtensionDatas OPTIONAL }`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SesSealInfo {
    pub header: SesHeader,
    pub es_id: Ia5String,
    pub property: SesEsPropertyInfo,
    pub picture: SesEsPictureInfo,
    #[asn1(optional = "true")]
    pub ext_datas: Option<Any>,
}

/// `SESeal ::= SEQUENCE { eSealInfo SES_SealInfo, cert OCTET STRING (the seal maker's
/// certificate), signAlgID OBJECT IDENTIFIER, signedValue BIT STRING }`: the seal,
/// signed by its maker (制章者) over DER(`eSealInfo`).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SeSeal {
    pub e_seal_info: SesSealInfo,
    pub cert: OctetString,
    pub sign_alg_id: ObjectIdentifier,
    pub signed_value: BitString,
}

/// `TBS_Sign ::= SEQUENCE { version INTEGER (4), eseal SESeal, timeInfo GeneralizedTime,
/// dataHash BIT STRING, propertyInfo IA5String, extDatas [0] EXPLICIT ExtensionDatas
/// OPTIONAL }`: what the signer signs.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct TbsSign {
    pub version: u32,
    pub eseal: SeSeal,
    pub time_info: GeneralizedTime,
    pub data_hash: BitString,
    pub property_info: Ia5String,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub ext_datas: Option<Any>,
}

/// `SES_Signature ::= SEQUENCE { toSign TBS_Sign, cert OCTET STRING (the signer's
/// certificate), signatureAlgID OBJECT IDENTIFIER, signature BIT STRING, timeStamp [0]
/// EXPLICIT BIT STRING OPTIONAL }`: the electronic signature (电子签章) data.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SesSignature {
    pub to_sign: TbsSign,
    pub cert: OctetString,
    pub signature_alg_id: ObjectIdentifier,
    pub signature: BitString,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub time_stamp: Option<BitString>,
}
