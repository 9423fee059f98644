//! The public routes (no login, rate-limited per client address, never personal data):
//! `POST /api/v1/verify` checks a presented PDF or XML (≤ [`VERIFY_BODY_LIMIT`], refused from
//! its `Content-Length` or as soon as a streamed body passes the limit, never buffered beyond
//! it) and answers the JSON of `elicence verify --json --data`; `GET /v/{identifier}` is the
//! verification page in Chinese: plain HTML with inline CSS, no script, no external asset.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::rejection::BytesRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::problem::Problem;
use super::routes::{body, with_registry};
use crate::identify::LicenceId;
use crate::registry::RegistryStatus;
use crate::registry::sha256_hex;
use crate::render::qr::QR_DIGEST_LEN;
use crate::share::presented::{FileReport, FileStatus, check_log_signature, registry_check};
use crate::share::public::{PublicLicence, PublicStatus, public_view};
use crate::share::query::qr_digest_matches;
use crate::verify::SignatureStatus;
use crate::verify::presented::verify_bytes;

/// Largest file `POST /api/v1/verify` accepts (the issue: 20 MB).
pub const VERIFY_BODY_LIMIT: usize = 20 * 1024 * 1024;

/// The rate-limit bucket of a public caller: its address.
pub(super) fn limit(state: &AppState, peer: SocketAddr) -> Result<(), Problem> {
    state
        .rate
        .take(&format!("ip:{}", peer.ip()), Instant::now())
        .map_err(|wait| Problem::too_many_requests("rate limit exceeded", wait))
}

/// `POST /api/v1/verify`: signature verdict and registry status of the body, audited as a
/// `verify` by `public`.
pub async fn verify(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(p) = limit(&state, peer) {
        return p.into_response();
    }
    let bytes = match body(raw) {
        Ok(b) if b.is_empty() => {
            return Problem::bad_request("empty body: send the file").into_response();
        }
        Ok(b) => b,
        Err(p) => return p.into_response(),
    };
    // Signature checking is CPU work: it runs on the blocking pool with the registry part.
    let result = with_registry(&state, move |state, r| {
        let at = crate::clock::now().map_err(|e| Problem::internal(&e))?;
        let mut report = FileReport::new("upload".into(), verify_bytes(&bytes, &state.trust, at));
        registry_check(r, &mut report, Some(&sha256_hex(&bytes)), "public", at)?;
        check_log_signature(&mut report, &state.trust, at);
        Ok(report)
    })
    .await;
    match result {
        Ok(report) => axum::Json(report).into_response(),
        Err(p) => p.into_response(),
    }
}

/// The query of the page a face's QR code opens: `d`, the first 16 hex digits of the content
/// digest printed in the code.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    d: Option<String>,
}

/// Whether the QR code's digest is the licence's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FaceCheck {
    /// No digest in the address (the page was opened by hand).
    NotAsked,
    Matches,
    Differs,
    /// The version has no stored XML to compare with.
    Unknown,
}

/// `GET /v/{identifier}[?d=<16 hex>]`: the public page of one licence; with `d` (from a face's
/// QR code) it also says whether that face belongs to this version.
pub async fn page(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    identifier: Result<Path<String>, axum::extract::rejection::PathRejection>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    if let Err(p) = limit(&state, peer) {
        return p.into_response();
    }
    let Ok(Path(identifier)) = identifier else {
        return message(StatusCode::BAD_REQUEST, "标识格式不正确", "链接中的证照标识无法识别。");
    };
    if identifier.len() > 128 || LicenceId::parse(&identifier).is_err() {
        return message(StatusCode::BAD_REQUEST, "标识格式不正确", "链接中的证照标识无法识别。");
    }
    let digest = match query {
        Ok(Query(PageQuery { d: None })) => None,
        Ok(Query(PageQuery { d: Some(d) }))
            if d.len() == QR_DIGEST_LEN && d.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Some(d)
        }
        _ => {
            return message(StatusCode::BAD_REQUEST, "链接格式不正确", "链接中的校验值无法识别。");
        }
    };
    let found = with_registry(&state, move |state, r| {
        let today = crate::clock::now().map_err(|e| Problem::internal(&e))?.date_naive();
        let Some(v) = r.licence_by_identifier(&identifier)? else {
            return Ok(None);
        };
        let face = match &digest {
            None => FaceCheck::NotAsked,
            Some(d) => match qr_digest_matches(r, &v, d)? {
                Some(true) => FaceCheck::Matches,
                Some(false) => FaceCheck::Differs,
                None => FaceCheck::Unknown,
            },
        };
        let status = r.status_on(&v, today)?;
        Ok(Some((public_view(&*state.catalog.now(r)?, &v, status), face)))
    })
    .await;
    match found {
        Ok(Some((l, face))) => licence_page(&l, face),
        Ok(None) => {
            message(StatusCode::NOT_FOUND, "未找到该证照", "登记库中没有此标识的电子证照。")
        }
        Err(p) => p.into_response(),
    }
}

/// Largest form body `POST /v/{identifier}/check` reads: the file limit and room for the
/// multipart framing.
pub const CHECK_FORM_LIMIT: usize = VERIFY_BODY_LIMIT + 64 * 1024;

/// `POST /v/{identifier}/check`: the page's file check, for browsers without JavaScript. A
/// `multipart/form-data` body with one `file` part (PDF, XML or OFD, ≤ [`VERIFY_BODY_LIMIT`]) is
/// checked like `POST /api/v1/verify` and answered with a verdict page in words: whether the
/// signature holds, and whether the file is this licence's registered version.
pub async fn check_file(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    identifier: Result<Path<String>, axum::extract::rejection::PathRejection>,
    headers: HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Response {
    if let Err(p) = limit(&state, peer) {
        return p.into_response();
    }
    let identifier = match identifier {
        Ok(Path(id)) if id.len() <= 128 && LicenceId::parse(&id).is_ok() => id,
        _ => {
            return message(
                StatusCode::BAD_REQUEST,
                "标识格式不正确",
                "链接中的证照标识无法识别。",
            );
        }
    };
    // A browser announces the form's length: refuse a large one before reading any of it.
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > CHECK_FORM_LIMIT as u64) {
        return too_large();
    }
    let bytes = match form_file(form).await {
        Ok(b) => b,
        Err(response) => return response,
    };
    let result = with_registry(&state, move |state, r| {
        let at = crate::clock::now().map_err(|e| Problem::internal(&e))?;
        let mut report = FileReport::new("upload".into(), verify_bytes(&bytes, &state.trust, at));
        registry_check(r, &mut report, Some(&sha256_hex(&bytes)), "public", at)?;
        Ok(report)
    })
    .await;
    match result {
        Ok(report) => verdict_page(&identifier, &report),
        Err(p) => p.into_response(),
    }
}

/// The `file` part of the form, whole; a missing or empty part, a body that is not
/// `multipart/form-data` or one over [`CHECK_FORM_LIMIT`] is answered with a page saying so.
async fn form_file(form: Result<Multipart, MultipartRejection>) -> Result<Bytes, Response> {
    let not_a_form = || {
        message(
            StatusCode::BAD_REQUEST,
            "请选择文件",
            "请在核验页面选择要核验的电子证照文件后提交。",
        )
    };
    let mut form = form.map_err(|_| not_a_form())?;
    loop {
        match form.next_field().await {
            Ok(Some(field)) if field.name() == Some("file") => {
                return match field.bytes().await {
                    Ok(b) if b.is_empty() => Err(not_a_form()),
                    Ok(b) if b.len() > VERIFY_BODY_LIMIT => Err(too_large()),
                    Ok(b) => Ok(b),
                    Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(too_large()),
                    Err(_) => Err(not_a_form()),
                };
            }
            Ok(Some(_)) => continue,
            Ok(None) => return Err(not_a_form()),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(_) => return Err(not_a_form()),
        }
    }
}

fn too_large() -> Response {
    message(
        StatusCode::PAYLOAD_TOO_LARGE,
        "文件过大",
        "核验的文件不能超过 20 MB。电子证照文件通常小于 1 MB。",
    )
}

/// The verdict of a presented file, in words, for the page of `identifier`.
fn verdict_page(identifier: &str, report: &FileReport) -> Response {
    let signature = match &report.status {
        SignatureStatus::Authentic => {
            ("ok", "签名有效", "文件的电子签名（签章）有效，签发后未被改动。".to_owned())
        }
        SignatureStatus::Tampered { reason } => (
            "bad",
            "文件已被改动",
            format!("电子签名与文件内容不符，文件在签发后被改动过或已损坏。（{}）", escape(reason)),
        ),
        SignatureStatus::Untrusted { .. } => (
            "bad",
            "签名不可信",
            "文件有电子签名，但签名证书不属于受信任的发证机关，或在签名时已失效。".to_owned(),
        ),
        SignatureStatus::NotSigned => (
            "bad",
            "未签名",
            "文件没有电子签名，不是电子证照（扫描件或打印件不具有效力）。".to_owned(),
        ),
    };
    let same_licence = report.identifier.as_deref() == Some(identifier);
    let registry = match (&report.registry_status, &report.identifier) {
        (None, _) | (Some(FileStatus::Licence(RegistryStatus::Unknown)), _) => {
            ("bad", "登记库中没有此文件：它不是登记机关签发的文件，或签发后被改动过。".to_owned())
        }
        (Some(_), Some(other)) if !same_licence => (
            "bad",
            format!(
                "此文件属于另一证照（<a href=\"../{0}\">{0}</a>），不是本页的证照。",
                escape(other)
            ),
        ),
        (Some(FileStatus::Copy(c)), _) if c.status == "copy" => {
            ("warn", "此文件是本证照的用证件（加注件），仅限其注明的用途和期限。".to_owned())
        }
        (Some(FileStatus::Copy(_)), _) => ("bad", "此用证件（加注件）已过期。".to_owned()),
        (Some(FileStatus::Licence(RegistryStatus::Current)), _) => {
            ("ok", "此文件是本证照登记在册的现行版本。".to_owned())
        }
        (Some(FileStatus::Licence(RegistryStatus::Superseded { by })), _) => (
            "warn",
            format!("此文件是本证照的旧版本，已被 <a href=\"../{0}\">{0}</a> 取代。", escape(by)),
        ),
        (Some(FileStatus::Licence(RegistryStatus::Revoked { effective, .. })), _) => {
            ("bad", format!("此证照已于 {effective} 注销。"))
        }
        (Some(FileStatus::Licence(RegistryStatus::Expired { on })), _) => {
            ("bad", format!("此证照的有效期已于 {on} 届满。"))
        }
        (Some(FileStatus::Licence(RegistryStatus::Disputed { .. })), _) => {
            ("warn", "发证机关核查认定此证照信息与登记档案不符，请勿据此办理业务。".to_owned())
        }
    };
    let (overall, words) = match (signature.0, registry.0) {
        ("ok", "ok") => ("ok", "核验通过"),
        ("ok", "warn") => ("warn", "请注意"),
        _ => ("bad", "核验未通过"),
    };
    let kind = escape(report.kind);
    let main = format!(
        r#"<h1>文件核验结果</h1>
<p>结论：<span class="status {overall}" role="status" id="verdict">{words}</span></p>
<dl>
<dt>文件类型</dt><dd>{kind}</dd>
<dt>电子签名</dt><dd class="{sig_class}" id="signature"><strong>{sig_words}</strong>：{sig_text}</dd>
<dt>登记状态</dt><dd class="{reg_class}" id="registry">{reg_text}</dd>
</dl>
<p><a href="../{id}">返回证照核验页</a></p>"#,
        sig_class = signature.0,
        sig_words = signature.1,
        sig_text = signature.2,
        reg_class = registry.0,
        reg_text = registry.1,
        id = escape(identifier),
    );
    frame(StatusCode::OK, words, &main)
}

/// HTML-escapes text for element content and double-quoted attributes.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page frame: mobile width, system fonts, colours with WCAG AA contrast, no script.
fn frame(status: StatusCode, title: &str, main: &str) -> Response {
    let html = format!(
        r#"<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · 电子证照核验</title>
<style>
body {{ font-family: system-ui, "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif; margin: 0; background: #f4f5f7; color: #1a1a1a; line-height: 1.6; }}
main {{ max-width: 36rem; margin: 0 auto; padding: 1rem; }}
h1 {{ font-size: 1.3rem; }}
.status {{ font-size: 1.5rem; font-weight: bold; padding: .5rem 1rem; border-radius: .3rem; display: inline-block; }}
.ok {{ background: #e3f4e8; color: #0b5a26; }}
.warn {{ background: #fff1d6; color: #6b4400; }}
.bad {{ background: #fde5e5; color: #8a1111; }}
.face {{ padding: .5rem 1rem; border-radius: .3rem; }}
dl {{ display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; background: #fff; padding: 1rem; border-radius: .3rem; }}
dt {{ font-weight: bold; }}
dd {{ margin: 0; word-break: break-all; }}
a {{ color: #0645ad; }}
</style>
</head>
<body>
<main>
{main}
</main>
</body>
</html>
"#
    );
    let mut r = (status, Html(html)).into_response();
    // The page needs nothing from elsewhere: forbid it, so an injected tag could load nothing.
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        ),
    );
    r
}

fn message(status: StatusCode, title: &str, text: &str) -> Response {
    frame(status, title, &format!("<h1>{}</h1>\n<p>{}</p>", escape(title), escape(text)))
}

fn licence_page(l: &PublicLicence, face: FaceCheck) -> Response {
    let (class, words, extra) = match &l.status {
        PublicStatus::Current => ("ok", "有效".to_owned(), String::new()),
        PublicStatus::Superseded { by } => (
            "warn",
            "已变更".to_owned(),
            format!("<p>此版本已被新版本取代：<a href=\"{0}\">查看现行版本</a></p>", escape(by)),
        ),
        PublicStatus::Revoked { on } => {
            ("bad", "已注销".to_owned(), format!("<p>注销日期：{on}</p>"))
        }
        PublicStatus::Expired { on } => {
            ("bad", "已过期".to_owned(), format!("<p>有效期已于 {on} 届满。</p>"))
        }
        PublicStatus::Disputed { since } => (
            "warn",
            "核查存疑".to_owned(),
            format!(
                "<p>发证机关于 {since} 核查认定此证照信息与登记档案不符，请勿据此办理业务。</p>"
            ),
        ),
    };
    let valid_to = l.valid_to.map_or_else(|| "长期".to_owned(), |d| d.to_string());
    let face = match face {
        FaceCheck::NotAsked => "",
        FaceCheck::Matches => {
            "<p class=\"face ok\" id=\"face\">二维码校验值与登记的电子证照一致：扫描的证照面与此版本相符。</p>\n"
        }
        FaceCheck::Differs => {
            "<p class=\"face bad\" id=\"face\">警告：二维码校验值与登记的电子证照不符。扫描的证照面不是此版本，可能已被改动，请勿据此办理业务。</p>\n"
        }
        FaceCheck::Unknown => {
            "<p class=\"face warn\" id=\"face\">登记库未保存此版本的 XML 电子证照，无法比对二维码校验值。</p>\n"
        }
    };
    let main = format!(
        r#"<h1>电子证照核验</h1>
<p>状态：<span class="status {class}" role="status">{words}</span></p>
{face}{extra}
<dl>
<dt>证照类型</dt><dd>{type_name}</dd>
<dt>发证机构代码</dt><dd>{issuer}</dd>
<dt>证照编号</dt><dd>{number}</dd>
<dt>有效期</dt><dd>{from} 至 {valid_to}</dd>
<dt>证照标识</dt><dd>{identifier}</dd>
</dl>
<p>本页只显示证照的类型、发证机构、编号、有效期和状态，不显示持证主体的信息。</p>
<form method="post" enctype="multipart/form-data" action="{identifier}/check">
<p><label for="file">核验手中的电子证照文件（PDF、XML 或 OFD，不超过 20 MB）：</label></p>
<p><input type="file" id="file" name="file" accept=".pdf,.xml,.ofd" required>
<button type="submit" id="check">核验文件</button></p>
</form>"#,
        type_name = escape(&l.type_name),
        issuer = escape(&l.issuer_code),
        number = escape(&l.printed_no),
        from = l.issue_date,
        identifier = escape(&l.identifier),
    );
    frame(StatusCode::OK, &words, &main)
}
