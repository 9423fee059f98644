//! The public routes (no login, rate-limited per client address, never personal data):
//! `POST /api/v1/verify` checks a presented PDF or XML (≤ [`VERIFY_BODY_LIMIT`], refused from
//! its `Content-Length` or as soon as a streamed body passes the limit, never buffered beyond
//! it) and answers the JSON of `elicence verify --json --data`; `GET /v/{identifier}` is the
//! verification page in Chinese: plain HTML with inline CSS, no script, no external asset.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::AppState;
use super::problem::Problem;
use super::routes::{body, with_registry};
use crate::identify::LicenceId;
use crate::registry::sha256_hex;
use crate::share::presented::{FileReport, check_log_signature, registry_check};
use crate::share::public::{PublicLicence, PublicStatus, public_view};
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

/// `GET /v/{identifier}`: the public page of one licence.
pub async fn page(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    identifier: Result<Path<String>, axum::extract::rejection::PathRejection>,
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
    let found = with_registry(&state, move |state, r| {
        let today = crate::clock::now().map_err(|e| Problem::internal(&e))?.date_naive();
        let Some(v) = r.licence_by_identifier(&identifier)? else {
            return Ok(None);
        };
        let status = r.status_on(&v, today)?;
        Ok(Some(public_view(&*state.catalog.now(r)?, &v, status)))
    })
    .await;
    match found {
        Ok(Some(l)) => licence_page(&l),
        Ok(None) => {
            message(StatusCode::NOT_FOUND, "未找到该证照", "登记库中没有此标识的电子证照。")
        }
        Err(p) => p.into_response(),
    }
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

fn licence_page(l: &PublicLicence) -> Response {
    let (class, words, extra) = match &l.status {
        PublicStatus::Current => ("ok", "有效".to_owned(), String::new()),
        PublicStatus::Superseded { by } => (
            "warn",
            "已变更".to_owned(),
            format!("<p>此版本已被新版本取代：<a href=\"/v/{0}\">查看现行版本</a></p>", escape(by)),
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
    let main = format!(
        r#"<h1>电子证照核验</h1>
<p>状态：<span class="status {class}" role="status">{words}</span></p>
{extra}
<dl>
<dt>证照类型</dt><dd>{type_name}</dd>
<dt>发证机构代码</dt><dd>{issuer}</dd>
<dt>证照编号</dt><dd>{number}</dd>
<dt>有效期</dt><dd>{from} 至 {valid_to}</dd>
<dt>证照标识</dt><dd>{identifier}</dd>
</dl>
<p>本页只显示证照的类型、发证机构、编号、有效期和状态，不显示持证主体的信息。</p>"#,
        type_name = escape(&l.type_name),
        issuer = escape(&l.issuer_code),
        number = escape(&l.printed_no),
        from = l.issue_date,
        identifier = escape(&l.identifier),
    );
    frame(StatusCode::OK, &words, &main)
}
