//! `elicence serve` (issue 15) through the real binary on a free loopback port, with a real HTTP
//! client (ureq): health, readiness, metrics, the OpenAPI document, department tokens, queries
//! within rights (masked as `elicence query` masks), every refusal as problem+json and in the
//! audit trail, token expiry, `dept disable` cutting a live token, the rate limit, hostile
//! input (malformed JSON, oversized bodies, path traversal, header injection) and the access
//! log holding no field values.

mod util;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use util::{copy_dir, elicence, root, run_expect};

/// 长春市医疗保障局: in the conditional food scope below.
const MED: &str = "11220100MB18300819";
/// 长春市市场监督管理局: outside it.
const MARKET: &str = "11220100MB1560013P";
const HOLDER: &str = "91220104MA00001708";
const NUMBER: &str = "JY12201040000016";
const CURRENT: &str =
    "1.2.156.3005.2.11100000MB0143028R901.11220104MB1875524M.JY12201040000016.002.8";
const LEGAL_REP_ID: &str = "220104198005120318";
const LEGAL_REP: &str = "张伟";
/// 医保定点资格审核, percent-encoded UTF-8.
const REASON: &str = "%E5%8C%BB%E4%BF%9D%E5%AE%9A%E7%82%B9%E8%B5%84%E6%A0%BC%E5%AE%A1%E6%A0%B8";

/// A registry loaded from the food fixture with the food type shared conditionally (MED in
/// scope, MARKET not), and the credentials of both departments.
struct Fixture {
    dir: tempfile::TempDir,
    catalog: PathBuf,
    med: String,
    market: String,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::new_with(&[])
    }

    /// As [`Fixture::new`], the run given `run_args` too.
    fn new_with(run_args: &[&str]) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let copy = dir.path().join("pipelines");
        copy_dir(&root().join("pipelines"), &copy);
        let seals = dir.path().join("fixtures/seals");
        std::fs::create_dir_all(&seals).expect("seals dir");
        std::fs::copy(root().join("fixtures/seals/seal.png"), seals.join("seal.png"))
            .expect("seal");
        let path = copy.join("catalog/food-business-permit.toml");
        let text = std::fs::read_to_string(&path).expect("food catalog");
        let replaced = text.replace(
            "[sharing]\nmode = \"unconditional\"",
            &format!("[sharing]\nmode = \"conditional\"\nscope = [\"{MED}\"]"),
        );
        assert_ne!(replaced, text);
        std::fs::write(&path, replaced).expect("write catalog");
        let mut f = Fixture {
            catalog: copy.join("catalog"),
            dir,
            med: String::new(),
            market: String::new(),
        };
        run_expect(
            f.cmd()
                .arg("run")
                .arg(copy.join("food-business-permit.toml"))
                .args(["--input", "fixtures/food-business-permit/export-utf8.csv"])
                .args(["--keys", "fixtures/keys"])
                .args(run_args),
            0,
        );
        f.med = f.add_dept(MED, "长春市医疗保障局");
        f.market = f.add_dept(MARKET, "长春市市场监督管理局");
        f
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn cmd(&self) -> Command {
        let mut c = elicence();
        c.env("ELICENCE_DATA", self.data());
        c.env("ELICENCE_CATALOG", &self.catalog);
        c.env_remove("ELICENCE_CREDENTIAL");
        c
    }

    fn add_dept(&self, code: &str, name: &str) -> String {
        let out = run_expect(
            self.cmd()
                .args(["dept", "add", code, "--name", name, "--level", "prefectural"])
                .args(["--region", "220100"]),
            0,
        );
        String::from_utf8(out.stdout).expect("utf-8").trim().to_owned()
    }

    /// Starts `elicence serve` on a free loopback port with `extra` flags.
    fn serve(&self, extra: &[&str]) -> Server {
        self.serve_env(extra, &[])
    }

    /// As [`Fixture::serve`], with environment variables set.
    fn serve_env(&self, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = self
            .cmd()
            .envs(env.iter().copied())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let stderr = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["event"] == "listening"
                {
                    let _ = tx.send(v["url"].as_str().unwrap_or_default().to_owned());
                }
                sink.lock().expect("log").push(line);
            }
        });
        let url = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("no listening line: {:?}", lines.lock().expect("log"))
        });
        Server { child, url, log: lines, exchanges: Mutex::new(Vec::new()) }
    }

    /// Every audit entry as (action, operator, subject, reason, details).
    fn audit(&self) -> Vec<(String, String, String, Option<String>, Value)> {
        let conn = rusqlite::Connection::open(self.data().join("registry.sqlite")).expect("db");
        let mut stmt = conn
            .prepare(
                "SELECT action, operator, subject, reason, details FROM audit_log ORDER BY seq",
            )
            .expect("prepare");
        stmt.query_map([], |r| {
            let details: String = r.get(4)?;
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                serde_json::from_str(&details).unwrap_or(Value::Null),
            ))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
    }
}

struct Server {
    child: Child,
    url: String,
    log: Arc<Mutex<Vec<String>>>,
    /// Every exchange through [`Server::get`] and [`Server::post`], for [`Server::check_openapi`].
    exchanges: Mutex<Vec<Value>>,
}

/// A response as (status, content type, body).
struct Reply {
    status: u16,
    content_type: String,
    body: String,
    retry_after: Option<String>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// A problem+json of `status`.
    fn problem(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.content_type, "application/problem+json", "{}", self.body);
        let p = self.json();
        assert_eq!(p["status"], status);
        assert!(p["title"].is_string() && p["detail"].is_string(), "{p}");
        p
    }
}

fn agent() -> ureq::Agent {
    util::http_agent()
}

fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut r = r.expect("a response");
    let header =
        |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let content_type = header("content-type").unwrap_or_default();
    let retry_after = header("retry-after");
    let status = r.status().as_u16();
    let body = r.body_mut().read_to_string().unwrap_or_default();
    Reply { status, content_type, body, retry_after }
}

impl Server {
    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = agent().get(format!("{}{path}", self.url));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.record("GET", path, reply(req.call()))
    }

    fn post(&self, path: &str, content_type: &str, body: &[u8]) -> Reply {
        self.post_with(path, content_type, body, &[])
    }

    fn post_with(
        &self,
        path: &str,
        content_type: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = agent().post(format!("{}{path}", self.url)).content_type(content_type);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.record("POST", path, reply(req.send(body)))
    }

    fn record(&self, method: &str, path: &str, r: Reply) -> Reply {
        self.exchanges.lock().expect("exchanges").push(json!({
            "method": method,
            "path": path,
            "status": r.status,
            "content_type": r.content_type,
            "body": r.body,
        }));
        r
    }

    /// Checks every exchange so far against the server's own `GET /openapi.json` (validated
    /// itself) with `tests/openapi_check.py` (openapi-spec-validator and jsonschema).
    fn check_openapi(&self) {
        let doc = reply(agent().get(format!("{}/openapi.json", self.url)).call()).json();
        let exchanges = self.exchanges.lock().expect("exchanges").clone();
        assert!(!exchanges.is_empty());
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), json!({"doc": doc, "exchanges": exchanges}).to_string())
            .expect("write exchanges");
        let out = Command::new("python3")
            .arg(root().join("tests/openapi_check.py"))
            .arg(file.path())
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "responses do not match /openapi.json:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The identifier of a superseded version of [`HOLDER`]'s licence, as the API lists it.
    fn superseded_version(&self, token: &str) -> String {
        let listed = self.get(
            &format!("/api/v1/licences?holder={HOLDER}"),
            &[("authorization", token), ("x-reason", REASON)],
        );
        listed.json()["licences"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["registry_status"]["status"] == "superseded"))
            .and_then(|l| l["identifier"].as_str())
            .expect("a superseded version")
            .to_owned()
    }

    fn token(&self, department: &str, credential: &str) -> Reply {
        let body = json!({"department": department, "credential": credential}).to_string();
        self.post("/api/v1/token", "application/json", body.as_bytes())
    }

    fn bearer(&self, department: &str, credential: &str) -> String {
        let r = self.token(department, credential);
        assert_eq!(r.status, 200, "{}", r.body);
        format!("Bearer {}", r.json()["access_token"].as_str().expect("token"))
    }

    /// Sends `request` as raw bytes on a new connection and reads the answer until the
    /// server closes it.
    fn raw(&self, request: &str) -> String {
        use std::io::{Read as _, Write as _};
        let addr = self.url.trim_start_matches("http://");
        let mut c = std::net::TcpStream::connect(addr).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        c.write_all(request.as_bytes()).expect("write");
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Stops the server with SIGTERM and returns its exit code and log lines.
    fn stop(mut self) -> (Option<i32>, Vec<String>) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        assert!(killed.success());
        let status = self.child.wait().expect("wait");
        std::thread::sleep(Duration::from_millis(100));
        let log = self.log.lock().expect("log").clone();
        (status.code(), log)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn field<'a>(licence: &'a Value, key: &str) -> &'a Value {
    licence["fields"]
        .as_array()
        .and_then(|f| f.iter().find(|x| x["key"] == key))
        .unwrap_or(&Value::Null)
}

#[test]
fn health_readiness_metrics_openapi_and_unknown_routes() {
    let f = Fixture::new();
    let s = f.serve(&[]);
    // The server replaced itself (same process) with its allocator settings in its environment.
    let environ = std::fs::read(format!("/proc/{}/environ", s.child.id())).expect("environ");
    let environ = String::from_utf8_lossy(&environ);
    for setting in ["MIMALLOC_PURGE_DELAY=0", "MIMALLOC_ARENA_EAGER_COMMIT=0"] {
        assert!(environ.split('\0').any(|v| v == setting), "{setting} in the server's environment");
    }
    let r = s.get("/healthz", &[]);
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    let r = s.get("/readyz", &[]);
    assert_eq!((r.status, r.json()["status"].clone()), (200, json!("ready")));
    s.get("/no/such/route", &[]).problem(404);

    let doc = s.get("/openapi.json", &[]).json();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in
        ["/healthz", "/readyz", "/metrics", "/openapi.json", "/api/v1/token", "/api/v1/licences"]
    {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert!(doc["paths"]["/api/v1/licences/{identifier}"].is_object());

    let m = s.get("/metrics", &[]);
    assert_eq!(m.status, 200);
    assert!(m.content_type.starts_with("text/plain; version=0.0.4"), "{}", m.content_type);
    assert!(
        m.body.contains("elicence_http_requests_total{route=\"/healthz\",status=\"200\"} 1"),
        "{}",
        m.body
    );
    assert!(m.body.contains("elicence_http_requests_total{route=\"unmatched\",status=\"404\"} 1"));
    assert!(m.body.contains("elicence_http_request_duration_seconds_bucket{route=\"/readyz\""));

    s.check_openapi();
    let (code, log) = s.stop();
    assert_eq!(code, Some(0), "graceful stop on SIGTERM: {log:?}");
    assert!(log.iter().any(|l| l.contains("\"plain_http\"")), "loopback warning: {log:?}");
    let access: Vec<Value> = log
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["route"].is_string())
        .collect();
    assert_eq!(access.len(), 6, "{log:?}");
    assert!(access.iter().all(|v| v["time"].is_string() && v["duration_ms"].is_number()));
    assert!(!log.iter().any(|l| l.contains("/no/such/route")), "raw paths are not logged");
}

#[test]
fn department_queries_within_rights_masked_refused_and_audited() {
    let f = Fixture::new();
    let s = f.serve(&[]);
    let before = f.audit().len();

    // Tokens: refusals first.
    s.token(MED, "wrong-credential-value-0000").problem(401);
    s.token("11220100MB18300818", &f.med).problem(400);
    s.post("/api/v1/token", "application/json", b"{\"department\": ").problem(400);
    s.post("/api/v1/token", "application/json", b"[1,2,3]").problem(400);
    let extra = json!({"department": MED, "credential": f.med, "role": "admin"}).to_string();
    s.post("/api/v1/token", "application/json", extra.as_bytes()).problem(400);
    s.post("/api/v1/token", "application/json", &vec![b' '; 64 * 1024]).problem(413);
    let med = s.bearer(MED, &f.med);
    let market = s.bearer(MARKET, &f.market);

    // In scope: every key answers, protected fields masked as the CLI masks them.
    let auth = |t: &str| vec![("authorization", t.to_owned()), ("x-reason", REASON.to_owned())];
    let h = |v: &Vec<(&'static str, String)>| -> Vec<(&'static str, String)> { v.clone() };
    let get = |path: &str, headers: &[(&str, String)]| {
        let hs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        s.get(path, &hs)
    };
    let med_h = h(&auth(&med));
    let r = get(&format!("/api/v1/licences/{CURRENT}"), &med_h);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.content_type, "application/json");
    let a = r.json();
    assert_eq!(a["reason"], "医保定点资格审核");
    assert_eq!(a["by"], "identifier");
    let l = &a["licences"][0];
    assert_eq!(l["identifier"], CURRENT);
    assert_eq!(l["access"], "in_scope");
    assert_eq!(field(l, "legal_rep_id")["masked"], true);
    assert!(!r.body.contains(LEGAL_REP_ID) && !r.body.contains(LEGAL_REP), "{}", r.body);
    // The same answer as `elicence query --json`.
    let cred = f.dir.path().join("med.cred");
    std::fs::write(&cred, &f.med).expect("cred");
    let out = run_expect(
        f.cmd()
            .args(["query", "--as", MED, "--reason", "医保定点资格审核", "--json", "--id", CURRENT])
            .arg("--credential-file")
            .arg(&cred),
        0,
    );
    let cli: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(cli, a, "API and CLI answer alike");

    let r = get(&format!("/api/v1/licences?holder={HOLDER}"), &med_h);
    assert_eq!(r.json()["licences"].as_array().map(Vec::len), Some(2), "{}", r.body);
    let r = get(&format!("/api/v1/licences?number={NUMBER}"), &med_h);
    assert_eq!(r.json()["by"], "number");
    let r = get("/api/v1/licences?holder=91220104MA0000170X", &med_h);
    assert_eq!((r.status, r.json()["licences"].clone()), (200, json!([])));

    // Outside scope: 403, no data.
    let market_h = h(&auth(&market));
    let r = get(&format!("/api/v1/licences/{CURRENT}"), &market_h);
    let p = r.problem(403);
    assert!(!r.body.contains(LEGAL_REP) && !r.body.contains("禾丰"), "{p}");
    get(&format!("/api/v1/licences?holder={HOLDER}"), &market_h).problem(403);
    // A well-formed identifier the registry does not hold: 404 (the empty answer is audited).
    let unknown = elicence::identify::LicenceId::parse(CURRENT)
        .and_then(|id| id.with_version(9))
        .expect("identifier")
        .to_string();
    get(&format!("/api/v1/licences/{unknown}"), &med_h).problem(404);
    assert_eq!(s.get(&format!("/v/{unknown}"), &[]).status, 404);

    // Refusals of shape.
    get(&format!("/api/v1/licences/{CURRENT}"), &[]).problem(401);
    get(&format!("/api/v1/licences/{CURRENT}"), &[("authorization", "Bearer abc.def".into())])
        .problem(401);
    let forged = med.replace("Bearer ", "Bearer x");
    get(&format!("/api/v1/licences/{CURRENT}"), &[("authorization", forged)]).problem(401);
    get(&format!("/api/v1/licences/{CURRENT}"), &[("authorization", med.clone())]).problem(400);
    get(
        &format!("/api/v1/licences/{CURRENT}"),
        &[("authorization", med.clone()), ("x-reason", "%E5%8C%BB%0D%0AX-Injected:%201".into())],
    )
    .problem(400);
    get(
        &format!("/api/v1/licences/{CURRENT}"),
        &[("authorization", med.clone()), ("x-reason", "%FF%FE".into())],
    )
    .problem(400);
    get("/api/v1/licences/..%2F..%2F..%2Fetc%2Fpasswd", &med_h).problem(400);
    get("/api/v1/licences", &med_h).problem(400);
    get(&format!("/api/v1/licences?holder={HOLDER}&number={NUMBER}"), &med_h).problem(400);
    get("/api/v1/licences?holder=x%27%20OR%201%3D1", &med_h).problem(400);
    get("/api/v1/licences?id=1", &med_h).problem(400);

    // The audit trail holds every answer and every refusal, and still verifies.
    let audit = f.audit();
    let new = &audit[before..];
    let count = |action: &str| new.iter().filter(|e| e.0 == action).count();
    assert_eq!(count("share_token"), 2, "{new:?}");
    assert_eq!(count("share_query"), 6, "{new:?}");
    let denials: Vec<String> = new
        .iter()
        .filter(|e| e.0 == "share_denied")
        .map(|e| e.4["refusal"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        denials,
        [
            "wrong_credential",
            "bad_input",
            "not_in_scope",
            "not_in_scope",
            "bad_input",
            "bad_input",
            "bad_input",
            "bad_input",
            "bad_input"
        ],
        "{new:?}"
    );
    assert!(
        new.iter()
            .filter(|e| e.0 == "share_query")
            .all(|e| e.3.as_deref() == Some("医保定点资格审核"))
    );
    let raw = format!("{new:?}");
    assert!(
        !raw.contains(LEGAL_REP_ID) && !raw.contains(LEGAL_REP) && !raw.contains("X-Injected:")
    );
    run_expect(f.cmd().args(["audit", "verify"]), 0);

    s.check_openapi();
    let (code, log) = s.stop();
    assert_eq!(code, Some(0));
    let joined = log.join("\n");
    assert!(!joined.contains(LEGAL_REP) && !joined.contains(&f.med) && !joined.contains(HOLDER));
    assert!(log.iter().any(|l| l.contains(&format!("\"department\":\"{MARKET}\""))));
}

#[test]
fn tokens_expire_dept_disable_cuts_them_and_the_rate_limit_answers_429() {
    let f = Fixture::new();
    // A sustained rate so small that the bucket does not refill while the test runs, however
    // slow the machine: the fourth request is over the burst of three.
    let s = f.serve(&["--rate", "0.001", "--burst", "3"]);
    let headers = |t: &str| [("authorization", t.to_owned()), ("x-reason", REASON.to_owned())];
    let get = |s: &Server, t: &str| {
        let h = headers(t);
        let hs: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        s.get(&format!("/api/v1/licences/{CURRENT}"), &hs)
    };
    let med = s.bearer(MED, &f.med);
    assert_eq!(get(&s, &med).status, 200);
    assert_eq!(get(&s, &med).status, 200);
    assert_eq!(get(&s, &med).status, 200);
    let r = get(&s, &med);
    r.problem(429);
    assert!(r.retry_after.is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n >= 1)));

    // A live token dies with `dept disable`.
    let market = s.bearer(MARKET, &f.market);
    get(&s, &market).problem(403);
    run_expect(f.cmd().args(["dept", "disable", MARKET]), 0);
    get(&s, &market).problem(401);
    s.token(MARKET, &f.market).problem(403);
    let refusals: Vec<String> = f
        .audit()
        .iter()
        .filter(|e| e.0 == "share_denied" && e.4["department"] == MARKET)
        .map(|e| e.4["refusal"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(refusals, ["not_in_scope", "disabled", "disabled"]);
    let m = s.get("/metrics", &[]).body;
    assert!(m.contains("elicence_http_refusals_total{status=\"429\"} 1"), "{m}");
    s.check_openapi();
    let _ = s.stop();

    // Expiry runs on the system clock (ELICENCE_NOW does not pin tokens): a one-second token
    // is refused once a second has passed.
    let s = f.serve(&["--token-ttl", "1"]);
    let med = s.bearer(MED, &f.med);
    std::thread::sleep(Duration::from_millis(1100));
    let r = get(&s, &med);
    assert!(r.problem(401)["detail"].as_str().is_some_and(|d| d.contains("expired")), "{}", r.body);
    s.check_openapi();
    let _ = s.stop();
}

#[test]
fn public_verify_and_page_say_what_the_cli_says_without_personal_data() {
    let f = Fixture::new();
    // Within its validity (to 2022-04-23) the current version is 有效 (the clock is injected).
    let earlier = f.serve_env(&[], &[("ELICENCE_NOW", "2020-01-01T00:00:00Z")]);
    let r = earlier.get(&format!("/v/{CURRENT}"), &[]);
    assert!(r.body.contains("class=\"status ok\" role=\"status\">有效<"), "{}", r.body);
    let _ = earlier.stop();

    let s = f.serve(&["--trust", "fixtures/keys/ca.pem"]);
    let pdfs = util::files_with_ext(&f.data().join("store"), "pdf");
    let pdf = pdfs.first().expect("a stored PDF").clone();
    let bytes = std::fs::read(&pdf).expect("pdf");

    // The same JSON as `elicence verify --json --data` (but the file name).
    let cli = |file: &Path| -> Value {
        let out = f
            .cmd()
            .args(["verify", "--json", "--trust", "fixtures/keys/ca.pem"])
            .arg("--data")
            .arg(f.data())
            .arg(file)
            .output()
            .expect("verify runs");
        let mut v: Value = serde_json::from_slice(&out.stdout).expect("json");
        v["file"] = json!("upload");
        v
    };
    let r = s.post("/api/v1/verify", "application/pdf", &bytes);
    assert_eq!(r.status, 200, "{}", r.body);
    let api = r.json();
    assert_eq!(api["status"], "authentic", "{api}");
    assert!(api["registry_status"]["status"].is_string(), "{api}");
    assert_eq!(api, cli(&pdf));

    let mut tampered = bytes.clone();
    let at = tampered.len() / 3;
    tampered[at] ^= 0x20;
    let r = s.post("/api/v1/verify", "application/pdf", &tampered);
    assert_eq!(r.json()["status"], "tampered", "{}", r.body);
    assert_eq!(r.json()["registry_status"]["status"], "unknown");
    let r = s.post("/api/v1/verify", "application/xml", b"<not-a-licence/>");
    assert_eq!(r.json()["status"], "not-signed");
    s.post("/api/v1/verify", "application/pdf", b"").problem(400);
    // 1 GB announced: refused from Content-Length at once, nothing sent or buffered.
    let raw = s.raw(
        "POST /api/v1/verify HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/pdf\r\n\
         Content-Length: 1073741824\r\nConnection: close\r\n\r\n%PDF",
    );
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(raw.contains("application/problem+json"), "{raw}");
    // Just over the limit, sent in full: 413 (or the connection closed on the sender).
    let big = vec![b'%'; 20 * 1024 * 1024 + 1];
    if let Ok(r) = agent()
        .post(format!("{}/api/v1/verify", s.url))
        .content_type("application/pdf")
        .send(&big[..])
    {
        assert_eq!(r.status().as_u16(), 413);
    }
    // Still serving.
    assert_eq!(s.get("/healthz", &[]).status, 200);
    let audits = f.audit().into_iter().filter(|e| e.0 == "verify" && e.1 == "public").count();
    assert_eq!(audits, 3);

    // The page: current, superseded (with a link), revoked, unknown, malformed.
    let page = |id: &str| s.get(&format!("/v/{id}"), &[]);
    let r = page(CURRENT);
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("text/html"));
    // Valid to 2022-04-23, seen on 2026-11-27: expired (the issue's example).
    assert!(r.body.contains(">已过期<") && r.body.contains(NUMBER), "{}", r.body);
    assert!(r.body.contains("lang=\"zh-CN\""));
    assert!(
        !r.body.contains("<script") && !r.body.contains("http://") && !r.body.contains("https://")
    );
    assert!(!r.body.contains(LEGAL_REP) && !r.body.contains(HOLDER) && !r.body.contains("禾丰"));
    let med = s.bearer(MED, &f.med);
    let old = s.superseded_version(&med);
    let r = page(&old);
    assert!(
        // Relative, so that the page works under a path prefix behind a proxy.
        r.body.contains("已变更") && r.body.contains(&format!("href=\"{CURRENT}\"")),
        "{}",
        r.body
    );
    run_expect(f.cmd().args(["revoke", CURRENT, "--reason", "吊销"]), 0);
    assert!(page(CURRENT).body.contains("已注销"));
    assert_eq!(page(&CURRENT.replace(".002.8", ".009.8")).status, 400);
    assert_eq!(page("..%2F..%2Fetc%2Fpasswd").status, 400);
    assert_eq!(page("%3Cscript%3E").status, 400);
    s.check_openapi();
    let _ = s.stop();
}

#[test]
fn plain_http_is_refused_off_loopback_and_tls_flags_go_together() {
    let dir = tempfile::tempdir().expect("tempdir");
    let serve = |args: &[&str], code: i32| {
        let mut c = elicence();
        c.env("ELICENCE_DATA", dir.path().join("data")).arg("serve").args(args);
        String::from_utf8_lossy(&run_expect(&mut c, code).stderr).into_owned()
    };
    let err = serve(&["--listen", "0.0.0.0:0"], 2);
    assert!(err.contains("not a loopback address"), "{err}");
    assert!(!dir.path().join("data").exists(), "refused before the registry is opened");
    serve(&["--listen", "127.0.0.1:0", "--tls-cert", "x.pem"], 2);
    serve(&["--listen", "127.0.0.1:0", "--token-ttl", "7200"], 2);
    let err = serve(&["--listen", "127.0.0.1:0", "--tls-cert", "x.pem", "--tls-key", "y.pem"], 3);
    assert!(err.contains("TLS"), "{err}");
}

/// The identifier of the version whose stored signed XML holds the element text `key` (a
/// licence number or holder code).
fn identifier_of(store: &Path, key: &str) -> String {
    let xml = util::files_with_ext(store, "xml")
        .into_iter()
        .map(|p| std::fs::read_to_string(p).expect("xml"))
        .find(|x| x.contains(&format!(">{key}<")))
        .expect("a stored XML holding the key");
    let start = xml.find("<Identifier>").expect("Identifier") + "<Identifier>".len();
    xml[start..start + xml[start..].find('<').expect("end")].to_owned()
}

/// 长春市朝阳区市场监督管理局, the issuer of the fixture's licences.
const ISSUER: &str = "11220104MB1875524M";
/// A licence loaded on top of the fixture, valid until 2030: current on the tests' date.
const NEW_NUMBER: &str = "JY12201040000233";

impl Fixture {
    /// Loads one more food licence, [`NEW_NUMBER`], issued 2026-01-05 and valid to 2030-12-31
    /// (the run given `run_args` too), and returns its identifier.
    fn load_current_licence(&self, run_args: &[&str]) -> String {
        let text =
            std::fs::read_to_string(root().join("fixtures/food-business-permit/export-utf8.csv"))
                .expect("fixture");
        let mut lines = text.lines();
        let header = lines.next().expect("header");
        let row = lines.next().expect("first row");
        let row = row
            .replace("JY12201040000016", NEW_NUMBER)
            .replace("2017-04-24", "2026-01-05")
            .replace("2022-04-23", "2030-12-31");
        assert!(row.contains(NEW_NUMBER) && row.contains("2030-12-31"), "{row}");
        let csv = self.dir.path().join("new.csv");
        std::fs::write(&csv, format!("{header}\n{row}\n")).expect("write csv");
        run_expect(
            self.cmd()
                .arg("run")
                .arg(self.dir.path().join("pipelines/food-business-permit.toml"))
                .arg("--input")
                .arg(&csv)
                .args(["--keys", "fixtures/keys"])
                .arg("--out")
                .arg(self.dir.path().join("out-new"))
                .args(run_args),
            0,
        );
        identifier_of(&self.data().join("store"), NEW_NUMBER)
    }

    /// `elicence verify --json --data` of every stored PDF: (exit code, reports).
    fn verify_all(&self) -> (Option<i32>, Vec<Value>) {
        let pdfs = util::files_with_ext(&self.data().join("store"), "pdf");
        let out = self
            .cmd()
            .args(["verify", "--json", "--keys", "fixtures/keys"])
            .args(&pdfs)
            .output()
            .expect("verify runs");
        let reports = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        (out.status.code(), reports)
    }

    /// `elicence verify --json --data` of the stored PDF of `identifier`: (exit code, report).
    fn verify_one(&self, identifier: &str) -> (Option<i32>, Value) {
        let (_, reports) = self.verify_all();
        let file = reports
            .iter()
            .find(|r| r["identifier"] == identifier)
            .and_then(|r| r["file"].as_str())
            .expect("the licence's stored PDF")
            .to_owned();
        let out = self
            .cmd()
            .args(["verify", "--json", "--keys", "fixtures/keys", &file])
            .output()
            .expect("verify runs");
        (out.status.code(), serde_json::from_slice(&out.stdout).expect("json"))
    }
}

#[test]
fn status_rules_expired_disputed_and_revoked_alike_in_cli_api_and_page() {
    let f = Fixture::new();
    f.load_current_licence(&[]);
    let med_cred = f.dir.path().join("med.cred");
    std::fs::write(&med_cred, &f.med).expect("cred");
    let issuer_cred = f.dir.path().join("issuer.cred");
    std::fs::write(&issuer_cred, f.add_dept(ISSUER, "长春市朝阳区市场监督管理局")).expect("cred");
    let s = f.serve(&["--trust", "fixtures/keys/ca.pem"]);
    let med = s.bearer(MED, &f.med);
    let h = [("authorization", med.as_str()), ("x-reason", REASON)];
    let api = |path: &str| {
        let r = s.get(path, &h);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["licences"][0]["registry_status"].clone()
    };
    let new_id = {
        let r = s.get(&format!("/api/v1/licences?number={NEW_NUMBER}"), &h);
        r.json()["licences"][0]["identifier"].as_str().expect("the new licence").to_owned()
    };
    let by_id = |id: &str| api(&format!("/api/v1/licences/{id}"));
    let page = |id: &str| s.get(&format!("/v/{id}"), &[]).body;

    // Expired: valid to 2022-04-23, seen on 2026-11-27 (ELICENCE_NOW of the tests).
    assert_eq!(by_id(CURRENT), json!({"status": "expired", "on": "2022-04-23"}));
    assert!(page(CURRENT).contains(">已过期<"));
    let (code, report) = f.verify_one(CURRENT);
    assert_eq!((code, &report["status"]), (Some(1), &json!("authentic")), "{report}");
    assert_eq!(report["registry_status"]["status"], "expired");

    // Current: within its validity, no check answered.
    assert_eq!(by_id(&new_id), json!({"status": "current"}));
    assert!(page(&new_id).contains(">有效<"));
    let (code, report) = f.verify_one(&new_id);
    assert_eq!((code, &report["registry_status"]["status"]), (Some(0), &json!("current")));

    // Disputed while the issuer's `inconsistent` answer stands.
    let as_dept = |code: &str, cred: &Path, args: &[&str]| {
        let mut c = f.cmd();
        c.args(args).args(["--as", code]).arg("--credential-file").arg(cred);
        c
    };
    run_expect(
        &mut as_dept(MED, &med_cred, &["check-request", &new_id, "--reason", "经营场所与现场不符"]),
        0,
    );
    // An open request changes nothing.
    assert_eq!(by_id(&new_id), json!({"status": "current"}));
    let answer = |n: &str, result: &str| {
        let args = ["check-answer", n, "--result", result, "--note", "现场核查"];
        run_expect(&mut as_dept(ISSUER, &issuer_cred, &args), 0);
    };
    answer("1", "inconsistent");
    let status = by_id(&new_id);
    assert_eq!(
        (&status["status"], &status["check_request"]),
        (&json!("disputed"), &json!(1)),
        "{status}"
    );
    assert!(page(&new_id).contains(">核查存疑<"));
    let (code, report) = f.verify_one(&new_id);
    assert_eq!((code, &report["registry_status"]["status"]), (Some(1), &json!("disputed")));
    let q = run_expect(
        &mut as_dept(MED, &med_cred, &["query", "--reason", "复核", "--id", &new_id]),
        0,
    );
    assert!(String::from_utf8_lossy(&q.stdout).contains("DISPUTED"), "{q:?}");

    // A later consistent answer stands instead.
    run_expect(
        &mut as_dept(MED, &med_cred, &["check-request", &new_id, "--reason", "再次核查"]),
        0,
    );
    answer("2", "consistent");
    assert_eq!(by_id(&new_id), json!({"status": "current"}));
    assert_eq!(f.verify_one(&new_id).0, Some(0));

    // Revoked: the signature is still authentic, but CLI, API and page say revoked.
    run_expect(f.cmd().args(["revoke", &new_id, "--reason", "吊销"]), 0);
    assert_eq!(by_id(&new_id)["status"], "revoked");
    assert!(page(&new_id).contains(">已注销<"));
    let (code, report) = f.verify_one(&new_id);
    assert_eq!((code, &report["status"]), (Some(1), &json!("authentic")));
    assert_eq!(report["registry_status"]["status"], "revoked");
    let r = s.post(
        "/api/v1/verify",
        "application/pdf",
        &std::fs::read(report["file"].as_str().expect("file")).expect("pdf"),
    );
    assert_eq!(
        (r.json()["status"].clone(), r.json()["registry_status"]["status"].clone()),
        (json!("authentic"), json!("revoked"))
    );

    s.check_openapi();
    let _ = s.stop();
}

#[test]
fn signed_files_within_rights_byte_for_byte_and_audited() {
    let f = Fixture::new();
    let s = f.serve(&["--trust", "fixtures/keys/ca.pem"]);
    let med = s.bearer(MED, &f.med);
    let market = s.bearer(MARKET, &f.market);
    let h = |t: &str| [("authorization", t.to_owned()), ("x-reason", REASON.to_owned())];
    let get = |t: &str, path: &str| {
        let hs = h(t);
        let hs: Vec<(&str, &str)> = hs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = s.send_binary("GET", path, &hs, None);
        let cd = r.header("content-disposition").unwrap_or_default().to_owned();
        (r.status, r.content_type, cd, r.bytes)
    };
    let pdf = format!("/api/v1/licences/{CURRENT}/files/pdf");
    // The food type has personal fields: the whole face needs a grant with unmasking.
    let (status, _, _, body) = get(&med, &pdf);
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    run_expect(
        f.cmd().args(["dept", "grant", MED, "--type", "food-business-permit", "--unmask"]),
        0,
    );
    let (status, ct, cd, body) = get(&med, &pdf);
    assert_eq!((status, ct.as_str()), (200, "application/pdf"));
    assert_eq!(cd, format!("attachment; filename=\"{CURRENT}.pdf\""));
    // Byte for byte the file the registry stored, and it verifies.
    let sha = elicence::registry::sha256_hex(&body);
    let pdfs = util::files_with_ext(&f.data().join("store"), "pdf");
    assert!(pdfs.iter().any(|p| p.file_stem().is_some_and(|s| s.to_string_lossy() == sha)));
    let v = s.post("/api/v1/verify", "application/pdf", &body).json();
    assert_eq!(
        (v["status"].clone(), v["identifier"].clone()),
        (json!("authentic"), json!(CURRENT))
    );
    let (status, ct, _, body) = get(&med, &format!("/api/v1/licences/{CURRENT}/files/xml"));
    assert_eq!((status, ct.as_str()), (200, "application/xml"));
    assert!(String::from_utf8_lossy(&body).contains("<Signature"));

    // The OFD e-licence (GB/T 33190) as stored: a package sealed for its issuer.
    let (status, ct, cd, body) = get(&med, &format!("/api/v1/licences/{CURRENT}/files/ofd"));
    assert_eq!((status, ct.as_str()), (200, "application/ofd"));
    assert_eq!(cd, format!("attachment; filename=\"{CURRENT}.ofd\""));
    let ofd_sha = elicence::registry::sha256_hex(&body);
    let ofds = util::files_with_ext(&f.data().join("store"), "ofd");
    assert!(ofds.iter().any(|p| p.file_stem().is_some_and(|s| s.to_string_lossy() == ofd_sha)));
    assert!(body.starts_with(b"PK\x03\x04"), "an OFD package is a zip archive");

    // Outside the scope, unknown kinds, unknown and malformed ids.
    assert_eq!(get(&market, &pdf).0, 403);
    assert_eq!(get(&med, &format!("/api/v1/licences/{CURRENT}/files/png")).0, 404);
    assert_eq!(get(&med, "/api/v1/licences/..%2F..%2Fetc%2Fpasswd/files/pdf").0, 400);
    let unknown = CURRENT.replace(".002.8", ".009.8");
    assert_eq!(
        get(&med, &format!("/api/v1/licences/{unknown}/files/pdf")).0,
        400,
        "bad check character"
    );
    assert_eq!(s.get(&pdf, &[]).status, 401);

    let audit = f.audit();
    let files: Vec<&Value> = audit.iter().filter(|e| e.0 == "share_file").map(|e| &e.4).collect();
    assert_eq!(files.len(), 3, "{files:?}");
    assert_eq!(files[0]["kind"], "pdf");
    assert_eq!(files[0]["sha256"], sha.as_str());
    assert_eq!((&files[2]["kind"], &files[2]["sha256"]), (&json!("ofd"), &json!(ofd_sha)));
    let refusals: Vec<&str> = audit
        .iter()
        .filter(|e| e.0 == "share_denied" && e.4["command"] == "api-file")
        .filter_map(|e| e.4["refusal"].as_str())
        .collect();
    // The two refusals of rights, then the path traversal and the bad check character.
    assert_eq!(refusals, ["needs_unmask", "not_in_scope", "bad_input", "bad_input"]);
    s.check_openapi();
    let _ = s.stop();
}

#[test]
fn the_transparency_log_is_public_checkpoints_proofs_and_consistency() {
    let f = Fixture::new();
    let s = f.serve(&[]);
    let latest = s.get("/api/v1/log/checkpoint", &[]);
    assert_eq!(latest.status, 200, "{}", latest.body);
    let checkpoint = latest.json();
    let size = checkpoint["tree_size"].as_u64().expect("size");
    assert!(size >= 8, "{checkpoint}");
    // The same checkpoint as the exported file.
    let export = f.dir.path().join("public");
    run_expect(f.cmd().args(["log", "export"]).arg(&export), 0);
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(export.join(format!("checkpoints/{size}.json"))).expect("file"),
    )
    .expect("json");
    assert_eq!(checkpoint, file);
    assert_eq!(s.get(&format!("/api/v1/log/checkpoints/{size}"), &[]).json(), file);
    s.get("/api/v1/log/checkpoints/99999", &[]).problem(404);
    s.get("/api/v1/log/checkpoints/x", &[]).problem(400);

    // A proof verifies against the checkpoint's root (RFC 9162 §2.1.3.2).
    let r = s.get(&format!("/api/v1/log/proof/{CURRENT}"), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let answer = r.json();
    let proof = &answer["proofs"][0];
    let leaf = proof["leaf"]["leaf"].as_str().expect("leaf");
    let path: Vec<[u8; 32]> = proof["audit_path"]
        .as_array()
        .expect("path")
        .iter()
        .map(|h| hex::decode(h.as_str().expect("hex")).expect("hex").try_into().expect("32"))
        .collect();
    let root: [u8; 32] = hex::decode(checkpoint["root_hash"].as_str().expect("root"))
        .expect("hex")
        .try_into()
        .expect("32");
    assert!(elicence::merkle::verify_inclusion(
        &elicence::merkle::leaf_hash(leaf.as_bytes()),
        proof["leaf"]["index"].as_u64().expect("index"),
        size,
        &path,
        &root
    ));
    s.get("/api/v1/log/proof/no-such-identifier", &[]).problem(404);

    // Consistency from an earlier tree to the checkpoint.
    let r = s.get("/api/v1/log/consistency?from=3", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let c = r.json();
    assert_eq!((c["from"].as_u64(), c["to"].as_u64()), (Some(3), Some(size)));
    assert!(!c["proof"].as_array().expect("proof").is_empty());
    s.get(&format!("/api/v1/log/consistency?from={}", size + 1), &[]).problem(400);
    s.get("/api/v1/log/consistency?from=x", &[]).problem(400);
    s.check_openapi();

    // A server whose kept tree has blocks of two leaves reads leaves back for its proofs: the
    // same answers (a log this small is all tail at the default block size).
    let small = f.serve_env(&[], &[("ELICENCE_LOG_BLOCK", "2")]);
    let proof = format!("/api/v1/log/proof/{CURRENT}");
    assert_eq!(small.get(&proof, &[]).json(), answer);
    for from in 1..=size {
        let path = format!("/api/v1/log/consistency?from={from}");
        assert_eq!(small.get(&path, &[]).json(), s.get(&path, &[]).json(), "from {from}");
    }
}

/// A binary answer: (status, content type, headers, body).
struct Binary {
    status: u16,
    content_type: String,
    headers: Vec<(String, String)>,
    bytes: Vec<u8>,
}

impl Binary {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// As a [`Reply`] (for a problem), the body read as text.
    fn reply(&self) -> Reply {
        Reply {
            status: self.status,
            content_type: self.content_type.clone(),
            body: String::from_utf8_lossy(&self.bytes).into_owned(),
            retry_after: self.header("retry-after").map(str::to_owned),
        }
    }
}

impl Server {
    /// Sends `body` with `method` to `path` and keeps the answer's bytes and headers; recorded
    /// for the OpenAPI check (a binary body as empty text).
    fn send_binary(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Binary {
        let url = format!("{}{path}", self.url);
        let result = match body {
            Some((ct, bytes)) => {
                let mut req = agent().post(url).content_type(ct);
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                req.send(bytes)
            }
            None => {
                let mut req = agent().get(url);
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                req.call()
            }
        };
        let mut r = result.expect("a response");
        let headers: Vec<(String, String)> = r
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let status = r.status().as_u16();
        let bytes = r.body_mut().read_to_vec().expect("body");
        let text = if content_type.contains("json") {
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            String::new()
        };
        self.record(
            method,
            path,
            Reply { status, content_type: content_type.clone(), body: text, retry_after: None },
        );
        Binary { status, content_type, headers, bytes }
    }

    /// `POST /api/v1/copies` with a token, `X-Reason` and a JSON body.
    fn copy(&self, token: &str, body: &str) -> Binary {
        let h = [("authorization", token), ("x-reason", REASON)];
        self.send_binary("POST", "/api/v1/copies", &h, Some(("application/json", body.as_bytes())))
    }
}

#[test]
fn copies_for_use_over_the_api_as_the_cli_makes_them_refused_and_audited() {
    let f = Fixture::new();
    let ask = |id: &str, expires: &str| json!({"identifier": id, "expires": expires}).to_string();
    // Without a signing key (none given, no development key set in the registry): 503.
    let s = f.serve(&[]);
    let med = s.bearer(MED, &f.med);
    s.copy(&med, &ask(CURRENT, "2026-12-31")).reply().problem(503);
    s.check_openapi();
    let _ = s.stop();

    let s = f.serve(&["--keys", "fixtures/keys", "--trust", "fixtures/keys/ca.pem"]);
    let med = s.bearer(MED, &f.med);
    let market = s.bearer(MARKET, &f.market);
    let before = f.audit().len();
    // The face shows the personal fields: without a grant with unmasking, 403.
    s.copy(&med, &ask(CURRENT, "2026-12-31")).reply().problem(403);
    run_expect(
        f.cmd().args(["dept", "grant", MED, "--type", "food-business-permit", "--unmask"]),
        0,
    );
    // The licence is expired (valid to 2022-04-23): copied, and its copy says so.
    let made = s.copy(&med, &ask(CURRENT, "2026-12-31"));
    assert_eq!((made.status, made.content_type.as_str()), (201, "application/pdf"));
    assert!(made.bytes.starts_with(b"%PDF"));
    let sha = elicence::registry::sha256_hex(&made.bytes);
    assert_eq!(made.header("x-copy-sha256"), Some(sha.as_str()));
    assert_eq!(made.header("x-copy-id"), Some("1"));
    assert_eq!(
        made.header("content-disposition"),
        Some(format!("attachment; filename=\"{CURRENT}.copy-1.pdf\"").as_str())
    );
    let conn = rusqlite::Connection::open(f.data().join("registry.sqlite")).expect("db");
    let (recorded, dept, expires, reason): (String, String, String, String) = conn
        .query_row("SELECT sha256, department, expires, reason FROM copies", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .expect("copy recorded");
    assert_eq!(
        (recorded.as_str(), dept.as_str(), expires.as_str(), reason.as_str()),
        (sha.as_str(), MED, "2026-12-31", "医保定点资格审核")
    );
    // A copy for use, authentic, as the API and `elicence verify --data` both say.
    let v = s.post("/api/v1/verify", "application/pdf", &made.bytes).json();
    assert_eq!((&v["status"], &v["identifier"]), (&json!("authentic"), &json!(CURRENT)), "{v}");
    assert_eq!(v["registry_status"]["status"], "copy", "{v}");
    assert_eq!(v["registry_status"]["for"], MED);
    assert_eq!(v["registry_status"]["licence"]["status"], "expired");
    let file = f.dir.path().join("api-copy.pdf");
    std::fs::write(&file, &made.bytes).expect("write copy");
    let out =
        run_expect(f.cmd().arg("verify").arg(&file).args(["--keys", "fixtures/keys", "--json"]), 1);
    let mut cli: Value = serde_json::from_slice(&out.stdout).expect("json");
    cli["file"] = json!("upload");
    assert_eq!(cli, v, "API and CLI verify the copy alike");
    if let Ok(o) = Command::new("pdftotext").arg(&file).arg("-").output() {
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.contains("仅供医保定点资格审核使用 · 长春市医疗保障局 · 有效期至 2026-12-31"),
            "{text}"
        );
    }

    // Refusals: of shape (400), of rights (403), of what is not there (404), of versions that
    // are not copied (409), of tokens (401); the server keeps serving.
    s.copy(&med, &ask(CURRENT, "2020-01-01")).reply().problem(400);
    s.copy(&med, "{\"identifier\": ").reply().problem(400);
    s.copy(&med, &json!({"identifier": CURRENT}).to_string()).reply().problem(400);
    let extra = json!({"identifier": CURRENT, "expires": "2026-12-31", "pages": 9}).to_string();
    s.copy(&med, &extra).reply().problem(400);
    s.copy(&med, &ask(CURRENT, "31/12/2026")).reply().problem(400);
    s.copy(&med, &ask("../../etc/passwd", "2026-12-31")).reply().problem(400);
    let unknown = CURRENT.replace(".002.8", ".009.8");
    s.copy(&med, &ask(&unknown, "2026-12-31")).reply().problem(400);
    let absent = elicence::identify::LicenceId::parse(CURRENT)
        .and_then(|id| id.with_version(9))
        .expect("identifier")
        .to_string();
    s.copy(&med, &ask(&absent, "2026-12-31")).reply().problem(404);
    s.copy(&market, &ask(CURRENT, "2026-12-31")).reply().problem(403);
    let h = [("authorization", med.as_str())];
    let no_reason = s.send_binary(
        "POST",
        "/api/v1/copies",
        &h,
        Some(("application/json", ask(CURRENT, "2026-12-31").as_bytes())),
    );
    no_reason.reply().problem(400);
    s.copy("Bearer x.y", &ask(CURRENT, "2026-12-31")).reply().problem(401);
    let big = vec![b' '; 8 * 1024];
    let h = [("authorization", med.as_str()), ("x-reason", REASON)];
    s.send_binary("POST", "/api/v1/copies", &h, Some(("application/json", &big)))
        .reply()
        .problem(413);
    let old = s.superseded_version(&med);
    let p = s.copy(&med, &ask(&old, "2026-12-31")).reply().problem(409);
    assert!(p["detail"].as_str().is_some_and(|d| d.contains("superseded")), "{p}");
    run_expect(f.cmd().args(["revoke", CURRENT, "--reason", "吊销"]), 0);
    let p = s.copy(&med, &ask(CURRENT, "2026-12-31")).reply().problem(409);
    assert!(p["detail"].as_str().is_some_and(|d| d.contains("revoked")), "{p}");
    // Disputed (the issuer answered `inconsistent`): a copy would carry a face its issuer has
    // said is wrong.
    f.load_current_licence(&[]);
    let listed = s.get(
        &format!("/api/v1/licences?number={NEW_NUMBER}"),
        &[("authorization", med.as_str()), ("x-reason", REASON)],
    );
    let new_id = listed.json()["licences"][0]["identifier"].as_str().expect("new").to_owned();
    let med_cred = f.dir.path().join("med.cred");
    std::fs::write(&med_cred, &f.med).expect("cred");
    let issuer_cred = f.dir.path().join("issuer.cred");
    std::fs::write(&issuer_cred, f.add_dept(ISSUER, "长春市朝阳区市场监督管理局")).expect("cred");
    run_expect(
        f.cmd()
            .args(["check-request", &new_id, "--reason", "经营场所与现场不符", "--as", MED])
            .arg("--credential-file")
            .arg(&med_cred),
        0,
    );
    run_expect(
        f.cmd()
            .args(["check-answer", "1", "--result", "inconsistent", "--note", "现场核查"])
            .args(["--as", ISSUER, "--credential-file"])
            .arg(&issuer_cred),
        0,
    );
    let p = s.copy(&med, &ask(&new_id, "2026-12-31")).reply().problem(409);
    assert!(p["detail"].as_str().is_some_and(|d| d.contains("disputed")), "{p}");
    assert_eq!(s.get("/healthz", &[]).status, 200);

    // One copy recorded; every refusal of the registry's part audited as the CLI audits it.
    let count: i64 = conn.query_row("SELECT COUNT(*) FROM copies", [], |r| r.get(0)).expect("n");
    assert_eq!(count, 1);
    let audit = f.audit();
    let new = &audit[before..];
    let copies: Vec<&Value> = new.iter().filter(|e| e.0 == "share_copy").map(|e| &e.4).collect();
    assert_eq!(copies.len(), 1, "{new:?}");
    assert_eq!((&copies[0]["sha256"], &copies[0]["copy"]), (&json!(sha), &json!(1)));
    let refusals: Vec<&str> = new
        .iter()
        .filter(|e| e.0 == "share_denied" && e.4["command"] == "api-copy")
        .filter_map(|e| e.4["refusal"].as_str())
        .collect();
    assert_eq!(
        refusals,
        ["needs_unmask", "bad_input", "bad_input", "bad_input", "not_in_scope", "bad_input"],
        "{new:?}"
    );
    run_expect(f.cmd().args(["audit", "verify"]), 0);
    s.check_openapi();
    let (code, log) = s.stop();
    assert_eq!(code, Some(0));
    assert!(!log.join("\n").contains(LEGAL_REP_ID));
}

#[test]
fn check_requests_over_the_api_go_to_the_issuer_who_alone_answers_audited() {
    let f = Fixture::new();
    f.load_current_licence(&[]);
    let issuer = f.add_dept(ISSUER, "长春市朝阳区市场监督管理局");
    // Tuesday 1 December 2026 is a holiday here: Friday 27 November + 5 working days skips it.
    let holidays = f.dir.path().join("holidays.txt");
    std::fs::write(&holidays, "2026-12-01\n").expect("holidays");
    let s = f.serve(&["--holidays", holidays.to_str().expect("utf-8")]);
    let med = s.bearer(MED, &f.med);
    let market = s.bearer(MARKET, &f.market);
    let chief = s.bearer(ISSUER, &issuer);
    let before = f.audit().len();
    let new_id = {
        let h = [("authorization", med.as_str()), ("x-reason", REASON)];
        let r = s.get(&format!("/api/v1/licences?number={NEW_NUMBER}"), &h);
        r.json()["licences"][0]["identifier"].as_str().expect("the new licence").to_owned()
    };
    let post = |token: &str, path: &str, body: &str| {
        let h = [("authorization", token), ("x-reason", REASON)];
        s.post_with(path, "application/json", body.as_bytes(), &h)
    };
    let open = |token: &str, id: &str| {
        post(token, "/api/v1/check-requests", &json!({"identifier": id}).to_string())
    };
    let answer = |token: &str, n: &str, result: &str, note: &str| {
        let body = json!({"result": result, "note": note}).to_string();
        post(token, &format!("/api/v1/check-requests/{n}/answer"), &body)
    };
    let list = |token: &str, query: &str| {
        s.get(&format!("/api/v1/check-requests{query}"), &[("authorization", token)])
    };

    // Opened by a department that may see the licence, addressed to its issuer.
    let r = open(&med, &new_id);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"request": 1, "identifier": new_id, "issuer": ISSUER, "due_on": "2026-12-07"})
    );
    // Refusals: outside the rights (403), shape (400), unknown licence (404), no token (401).
    open(&market, &new_id).problem(403);
    open(&med, "../../etc/passwd").problem(400);
    open(&med, &CURRENT.replace(".002.8", ".009.8")).problem(400);
    let absent = elicence::identify::LicenceId::parse(CURRENT)
        .and_then(|id| id.with_version(9))
        .expect("identifier")
        .to_string();
    open(&med, &absent).problem(404);
    post(&med, "/api/v1/check-requests", "{\"identifier\": 1}").problem(400);
    post(&med, "/api/v1/check-requests", "{").problem(400);
    let no_reason = json!({"identifier": new_id}).to_string();
    s.post_with(
        "/api/v1/check-requests",
        "application/json",
        no_reason.as_bytes(),
        &[("authorization", med.as_str())],
    )
    .problem(400);
    open("Bearer x.y", &new_id).problem(401);

    // Both sides list it, as `check-request --list --json` lists it.
    let r = list(&chief, "");
    assert_eq!(r.status, 200, "{}", r.body);
    let listed = r.json();
    assert_eq!(listed[0]["requester"], MED);
    assert_eq!((&listed[0]["overdue"], &listed[0]["result"]), (&json!(false), &Value::Null));
    let cred = f.dir.path().join("med.cred");
    std::fs::write(&cred, &f.med).expect("cred");
    let cli = run_expect(
        f.cmd()
            .args(["check-request", "--list", "--json", "--as", MED, "--credential-file"])
            .arg(&cred),
        0,
    );
    assert_eq!(serde_json::from_slice::<Value>(&cli.stdout).expect("json"), list(&med, "").json());
    list(&market, "").json().as_array().map_or_else(|| panic!("array"), |a| assert!(a.is_empty()));
    list(&med, "?all=maybe").problem(400);
    list(&med, "?status=open").problem(400);

    // Only the issuer answers, once; a bad answer is refused before anything is recorded.
    answer(&med, "1", "consistent", "与登记档案一致").problem(403);
    answer(&chief, "1", "maybe", "与登记档案一致").problem(400);
    answer(&chief, "1", "consistent", " ").problem(400);
    answer(&chief, "99", "consistent", "与登记档案一致").problem(404);
    answer(&chief, "x", "consistent", "与登记档案一致").problem(400);
    let r = answer(&chief, "1", "inconsistent", "经营场所与登记不符");
    assert_eq!(r.status, 200, "{}", r.body);
    let answered = r.json();
    assert_eq!(
        (&answered["result"], &answered["answerer"]),
        (&json!("inconsistent"), &json!(ISSUER))
    );
    assert_eq!(answered["note"], "经营场所与登记不符");
    answer(&chief, "1", "consistent", "复核一致").problem(409);
    // The answer stands: the licence is disputed, in the API and on the page.
    let h = [("authorization", med.as_str()), ("x-reason", REASON)];
    let status = s.get(&format!("/api/v1/licences/{new_id}"), &h).json();
    assert_eq!(status["licences"][0]["registry_status"]["status"], "disputed");
    assert!(s.get(&format!("/v/{new_id}"), &[]).body.contains(">核查存疑<"));
    assert_eq!(list(&med, "").json(), json!([]));
    assert_eq!(list(&med, "?all=true").json().as_array().map(Vec::len), Some(1));

    // The audit trail holds the request, the answer, every listing and every refusal.
    let audit = f.audit();
    let new = &audit[before..];
    let count = |action: &str| new.iter().filter(|e| e.0 == action).count();
    assert_eq!((count("check_request"), count("check_answer")), (1, 1), "{new:?}");
    assert_eq!(count("check_list"), 6, "{new:?}");
    let refusals: Vec<(&str, &str)> = new
        .iter()
        .filter(|e| e.0 == "share_denied")
        .filter_map(|e| Some((e.4["command"].as_str()?, e.4["refusal"].as_str()?)))
        .collect();
    assert_eq!(
        refusals,
        [
            ("api-check-request", "not_in_scope"),
            ("api-check-request", "bad_input"),
            ("api-check-request", "bad_input"),
            ("api-check-request", "bad_input"),
            ("api-check-answer", "not_issuer"),
            ("api-check-answer", "bad_input"),
        ],
        "{new:?}"
    );
    run_expect(f.cmd().args(["audit", "verify"]), 0);
    s.check_openapi();
    let _ = s.stop();
}

#[test]
fn the_server_follows_the_published_catalog_not_its_catalog_flag() {
    let f = Fixture::new();
    // Started with the shipped catalog (unconditional sharing): the registry's published one
    // (conditional, MARKET outside the scope) decides.
    let shipped = root().join("pipelines/catalog");
    let s = f.serve_env(&[], &[("ELICENCE_CATALOG", shipped.to_str().expect("utf-8"))]);
    let market = s.bearer(MARKET, &f.market);
    let h = [("authorization", market.as_str()), ("x-reason", REASON)];
    s.get(&format!("/api/v1/licences/{CURRENT}"), &h).problem(403);
    // Published while it runs: the next request follows it.
    run_expect(f.cmd().args(["catalog", "publish", "--catalog"]).arg(&shipped), 0);
    let r = s.get(&format!("/api/v1/licences/{CURRENT}"), &h);
    assert_eq!(
        (r.status, r.json()["licences"][0]["access"].clone()),
        (200, json!("unconditional"))
    );
    s.check_openapi();
    let _ = s.stop();
}

/// The public URL the QR-code tests issue under (any address: the test reads its path).
const PUBLIC_URL: &str = "https://zz.example.gov.cn/verify";

#[test]
fn qr_codes_open_the_public_page_which_checks_the_face_they_came_from() {
    let f = Fixture::new_with(&["--public-url", &format!("{PUBLIC_URL}/")]);
    let store = f.data().join("store");
    let pdfs = util::files_with_ext(&store, "pdf");
    let codes = util::scanned_qr_codes(&pdfs);
    assert_eq!(codes.len(), pdfs.len(), "one QR code a face: {codes:?}");
    let s = f.serve(&[]);
    let mut current = None;
    for code in &codes {
        // <public URL>/v/<identifier>?d=<16 hex>, the digest that of the version's signed XML.
        let page = code.strip_prefix(PUBLIC_URL).unwrap_or_else(|| panic!("{code}"));
        let (identifier, digest) = page
            .strip_prefix("/v/")
            .and_then(|p| p.split_once("?d="))
            .unwrap_or_else(|| panic!("{code}"));
        assert_eq!(digest, util::face_digest(&store, identifier), "{code}");
        if identifier == CURRENT {
            current = Some(page.to_owned());
        }
    }
    let page = current.expect("the current version's face");
    let r = s.get(&page, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("class=\"face ok\" id=\"face\">二维码校验值与登记的电子证照一致"));
    // A face whose digest is not this version's: a warning on the page.
    let last = with_other_last_digit(&page);
    let r = s.get(&last, &[]);
    assert!(r.body.contains("class=\"face bad\" id=\"face\">警告"), "{}", r.body);
    assert!(!s.get(&format!("/v/{CURRENT}"), &[]).body.contains("id=\"face\""));
    assert_eq!(s.get(&format!("/v/{CURRENT}?d=12"), &[]).status, 400);
    assert_eq!(s.get(&format!("/v/{CURRENT}?d=zzzzzzzzzzzzzzzz"), &[]).status, 400);
    // The department API reads the scanned address like the ELIC1: form, digest checked.
    let med = s.bearer(MED, &f.med);
    let by_qr = |payload: &str| {
        let encoded: String = payload
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        s.get(
            &format!("/api/v1/licences?qr={encoded}"),
            &[("authorization", &med), ("x-reason", REASON)],
        )
    };
    let r = by_qr(&format!("{PUBLIC_URL}{page}"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["licences"][0]["identifier"], CURRENT);
    by_qr(&format!("{PUBLIC_URL}{last}")).problem(400);
    s.check_openapi();
    let _ = s.stop();

    // A bad public URL is a configuration error before anything is made.
    let out = run_expect(
        f.cmd()
            .arg("run")
            .arg(f.dir.path().join("pipelines/food-business-permit.toml"))
            .args(["--input", "fixtures/food-business-permit/export-utf8.csv"])
            .args(["--keys", "fixtures/keys", "--public-url", "zz.example.gov.cn/?x=1"]),
        3,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("public URL"));
}

/// `address` (ending in a hex digit) with another last digit.
fn with_other_last_digit(address: &str) -> String {
    let mut s = address.to_owned();
    let last = s.pop().expect("a digit");
    s.push(if last == '0' { '1' } else { '0' });
    s
}

/// A `multipart/form-data` body with one file part named `name`, as a browser sends the page's
/// form: (content type, body).
fn form(name: &str, file_name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----elicenceFormBoundary7MA4YWxkTrZu0gW";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; \
         filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[test]
fn the_page_checks_a_file_without_javascript_and_says_so_in_words() {
    let f = Fixture::new();
    let s = f.serve(&["--trust", "fixtures/keys/ca.pem"]);
    let store = f.data().join("store");
    let issued = f.load_current_licence(&[]);
    let page = s.get(&format!("/v/{issued}"), &[]);
    assert!(
        page.body.contains(&format!(
            "<form method=\"post\" enctype=\"multipart/form-data\" action=\"{issued}/check\">"
        )),
        "{}",
        page.body
    );
    let check_on = |identifier: &str, file: &[u8]| {
        let (content_type, body) = form("file", "licence.bin", file);
        s.post(&format!("/v/{identifier}/check"), &content_type, &body)
    };
    let check = |file: &[u8]| check_on(&issued, file);
    let r = check(util::stored_xml(&store, &issued).as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.content_type.starts_with("text/html"));
    assert!(r.body.contains("id=\"verdict\">核验通过<"), "{}", r.body);
    assert!(r.body.contains("此文件是本证照登记在册的现行版本"), "{}", r.body);
    // Authentic, but the licence's validity has ended: not passed, and why.
    let r = check_on(CURRENT, util::stored_xml(&store, CURRENT).as_bytes());
    assert!(r.body.contains("签名有效") && r.body.contains("核验未通过"), "{}", r.body);
    assert!(r.body.contains("有效期已于 2022-04-23 届满"), "{}", r.body);
    // The PDF of the same version passes too; the one of another version is named as such.
    let mut mine = None;
    let mut other = None;
    for pdf in util::files_with_ext(&store, "pdf") {
        let bytes = std::fs::read(&pdf).expect("pdf");
        let r = check(&bytes);
        if r.body.contains("核验通过") {
            mine = Some(bytes);
        } else if r.body.contains("此文件属于另一证照") || r.body.contains("旧版本") {
            other = Some(bytes);
        }
    }
    let mut tampered = mine.expect("the current licence's PDF passes");
    assert!(other.is_some(), "another licence's PDF is named as another's");
    let at = tampered.len() / 3;
    tampered[at] ^= 0x20;
    let r = check(&tampered);
    assert!(r.body.contains("id=\"verdict\">核验未通过<"), "{}", r.body);
    assert!(r.body.contains("文件已被改动"), "{}", r.body);
    let r = check(b"a scan of a printed licence");
    assert!(r.body.contains("未签名") && r.body.contains("登记库中没有此文件"), "{}", r.body);
    // No file part, not a form, a malformed identifier: pages saying so.
    let (content_type, body) = form("other", "x.pdf", b"%PDF");
    let r = s.post(&format!("/v/{issued}/check"), &content_type, &body);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("请选择文件"), "{}", r.body);
    assert_eq!(s.post(&format!("/v/{issued}/check"), "text/plain", b"x").status, 400);
    assert_eq!(s.post("/v/..%2Fx/check", &content_type, &body).status, 400);
    // 1 GB announced: a page saying the limit, before anything is read.
    let raw = s.raw(&format!(
        "POST /v/{CURRENT}/check HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\n\
         Content-Length: 1073741824\r\nConnection: close\r\n\r\n--"
    ));
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(raw.contains("text/html") && raw.contains("20 MB"), "{raw}");
    let audits = f.audit().into_iter().filter(|e| e.0 == "verify" && e.1 == "public").count();
    assert!(audits >= 4, "{audits}");
    s.check_openapi();
    let _ = s.stop();
}

#[test]
fn slow_clients_are_cut_off_headers_and_bodies_alike() {
    use std::io::{Read as _, Write as _};
    let f = Fixture::new();
    let s = f.serve(&["--header-timeout", "1", "--request-timeout", "2"]);
    let addr = s.url.trim_start_matches("http://").to_owned();
    let connect = || {
        let c = std::net::TcpStream::connect(&addr).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        c
    };
    // Headers that never end (slowloris): the server closes the connection, unanswered.
    let mut c = connect();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: 1").expect("write");
    let mut out = Vec::new();
    let read = c.read_to_end(&mut out);
    assert!(read.is_ok(), "the server closed the connection, the client did not time out");
    assert!(!String::from_utf8_lossy(&out).contains("200 OK"), "{out:?}");
    // A connection that sends nothing: closed too.
    let mut c = connect();
    assert!(c.read_to_end(&mut Vec::new()).is_ok());
    // A body that trickles: 503, and the connection is not held.
    let mut c = connect();
    c.write_all(
        b"POST /api/v1/verify HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/pdf\r\n\
          Content-Length: 100000\r\nConnection: close\r\n\r\n%PDF-1.7\n",
    )
    .expect("write");
    let mut out = Vec::new();
    assert!(c.read_to_end(&mut out).is_ok());
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 503"), "{out}");
    assert!(out.contains("longer than 2 s"), "{out}");
    // Others are served meanwhile and after.
    assert_eq!(s.get("/healthz", &[]).status, 200);
    let _ = s.stop();
}

/// The page in a real browser: headless Chromium driven by Selenium (tests/verify_page.py) opens
/// a face's QR address of a current licence, an expired and a revoked one, reads each status,
/// then uploads the current licence's genuine PDF and a tampered copy through the form (no
/// script on the page) and reads the verdicts. `ELICENCE_REQUIRE_BROWSER=1` (CI) fails when
/// Chromium is missing; `ELICENCE_SCREENSHOTS=DIR` keeps the screenshots (docs/verify-*.png).
#[test]
fn the_page_works_in_a_real_headless_browser() {
    let have =
        Command::new("python3").args(["-c", "import selenium"]).status().is_ok_and(|s| s.success())
            && Path::new("/usr/bin/chromium").exists()
            && Path::new("/usr/bin/chromedriver").exists();
    if !have {
        assert!(
            std::env::var_os("ELICENCE_REQUIRE_BROWSER").is_none(),
            "chromium, chromium-driver and selenium are required (.ci/setup)"
        );
        eprintln!("skipped: no chromium/chromedriver/selenium");
        return;
    }
    let f = Fixture::new();
    let store = f.data().join("store");
    let s = f.serve(&["--trust", "fixtures/keys/ca.pem"]);
    let issued = f.load_current_licence(&["--public-url", PUBLIC_URL]);
    let revoked = identifier_of(&store, "JY22201040000027");
    run_expect(f.cmd().args(["revoke", &revoked, "--reason", "吊销"]), 0);
    let digest = util::face_digest(&store, &issued);
    // The current licence's PDF as the registry holds it (the whole face needs a grant with
    // unmasking), and a copy with one byte changed.
    let food = ["--type", "11100000MB0143028R901", "--unmask"];
    run_expect(f.cmd().args(["dept", "grant", MED]).args(food), 0);
    let med = s.bearer(MED, &f.med);
    let file = s.send_binary(
        "GET",
        &format!("/api/v1/licences/{issued}/files/pdf"),
        &[("authorization", &med), ("x-reason", REASON)],
        None,
    );
    assert_eq!(file.status, 200);
    assert!(file.bytes.starts_with(b"%PDF"));
    let genuine = f.dir.path().join("licence.pdf");
    std::fs::write(&genuine, &file.bytes).expect("write");
    let mut bytes = file.bytes.clone();
    let at = bytes.len() / 3;
    bytes[at] ^= 0x20;
    let tampered = f.dir.path().join("tampered.pdf");
    std::fs::write(&tampered, &bytes).expect("write");
    let shots = match std::env::var_os("ELICENCE_SCREENSHOTS") {
        Some(dir) => PathBuf::from(dir),
        None => f.dir.path().join("shots"),
    };
    std::fs::create_dir_all(&shots).expect("shots dir");
    let page = |id: &str| format!("{}/v/{id}", s.url);
    let plan = json!({
        "pages": [
            {"url": format!("{}?d={digest}", page(&issued)), "shot": "verify-page.png"},
            {"url": page(CURRENT)},
            {"url": page(&revoked)},
        ],
        "uploads": [
            {"url": page(&issued), "file": genuine, "shot": "verify-result.png"},
            {"url": page(&issued), "file": tampered},
        ],
    });
    let plan_file = f.dir.path().join("plan.json");
    std::fs::write(&plan_file, plan.to_string()).expect("write plan");
    let out = Command::new("python3")
        .arg(root().join("tests/verify_page.py"))
        .arg(&plan_file)
        .arg(&shots)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "browser check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).expect("json from verify_page.py");
    let pages = &seen["pages"];
    assert_eq!(pages[0]["status"], "有效", "{seen}");
    assert!(pages[0]["face"].as_str().is_some_and(|t| t.contains("一致")), "{seen}");
    assert_eq!(pages[1]["status"], "已过期", "{seen}");
    assert_eq!(pages[2]["status"], "已注销", "{seen}");
    for p in pages.as_array().expect("pages") {
        assert_eq!(p["scripts"], 0, "{seen}");
        assert_eq!(p["form"], 1, "{seen}");
    }
    let uploads = &seen["uploads"];
    assert_eq!(uploads[0]["verdict"], "核验通过", "{seen}");
    assert!(uploads[0]["registry"].as_str().is_some_and(|t| t.contains("现行版本")), "{seen}");
    assert_eq!(uploads[1]["verdict"], "核验未通过", "{seen}");
    assert!(uploads[1]["signature"].as_str().is_some_and(|t| t.contains("文件已被改动")), "{seen}");
    assert!(shots.join("verify-page.png").exists() && shots.join("verify-result.png").exists());
    let _ = s.stop();
}

#[test]
fn review_over_the_api_with_operator_tokens_four_eyes_and_events_for_departments() {
    let f = Fixture::new();
    // A department relies on the holder's licences (it queried them) before anything changes.
    let s = f.serve(&[]);
    let med = s.bearer(MED, &f.med);
    let h = [("authorization", med.as_str()), ("x-reason", REASON)];
    assert_eq!(s.get(&format!("/api/v1/licences?holder={HOLDER}"), &h).status, 200);
    let start = s.get("/api/v1/events", &[("authorization", &med)]);
    assert_eq!(start.status, 200, "{}", start.body);
    let cursor = start.json()["next_cursor"].as_u64().expect("cursor");
    // No admin operator yet: nobody can be authenticated over HTTP.
    let ask_token = |name: &str, credential: &str| {
        let body = json!({"operator": name, "credential": credential}).to_string();
        s.post("/api/v1/operator-token", "application/json", body.as_bytes())
    };
    ask_token("admin", "x").problem(403);

    // Operators: an admin, a collector and a reviewer.
    let cred = |name: &str| f.dir.path().join(format!("{name}.cred"));
    let out = run_expect(f.cmd().args(["operator", "add", "admin", "--role", "admin"]), 0);
    std::fs::write(cred("admin"), &out.stdout).expect("write");
    let as_op = |name: &str| {
        let mut c = f.cmd();
        c.env("ELICENCE_OPERATOR_CREDENTIAL", std::fs::read_to_string(cred(name)).expect("cred"));
        c
    };
    for (name, role) in [("collector", "collector"), ("reviewer", "reviewer")] {
        let out = run_expect(
            as_op("admin")
                .args(["operator", "add", name, "--role", role])
                .arg("--operator")
                .arg("admin"),
            0,
        );
        std::fs::write(cred(name), &out.stdout).expect("write");
    }
    // The collector stages a change of the holder's licence (采集): nothing is signed.
    let export =
        std::fs::read_to_string(root().join("fixtures/food-business-permit/export-utf8.csv"))
            .expect("export");
    let header = export.lines().next().expect("header");
    let row = export.lines().find(|l| l.contains(HOLDER)).expect("row");
    let changed = row.replace("红旗街1号,食品销售经营者", "红旗街1号B座,食品销售经营者");
    assert_ne!(changed, row);
    let csv = f.dir.path().join("changed.csv");
    std::fs::write(&csv, format!("{header}\n{changed}\n")).expect("write");
    run_expect(
        as_op("collector")
            .arg("run")
            .arg(f.dir.path().join("pipelines/food-business-permit.toml"))
            .arg("--input")
            .arg(&csv)
            .args(["--keys", "fixtures/keys", "--review", "--operator", "collector"]),
        0,
    );

    let token = |name: &str| {
        let r = ask_token(name, std::fs::read_to_string(cred(name)).expect("cred").trim());
        assert_eq!(r.status, 200, "{}", r.body);
        format!("Bearer {}", r.json()["access_token"].as_str().expect("token"))
    };
    ask_token("reviewer", "not-the-credential").problem(401);
    let reviewer = token("reviewer");
    let collector = token("collector");
    // Each kind of token only where it belongs.
    s.get("/api/v1/review", &[("authorization", &med)]).problem(401);
    s.get(
        &format!("/api/v1/licences?holder={HOLDER}"),
        &[("authorization", &reviewer), ("x-reason", REASON)],
    )
    .problem(401);

    let listed = s.get("/api/v1/review", &[("authorization", &reviewer)]);
    assert_eq!(listed.status, 200, "{}", listed.body);
    let items = listed.json();
    let item = items.as_array().and_then(|a| a.first()).expect("one pending item").clone();
    assert_eq!(items.as_array().map(Vec::len), Some(1), "{items}");
    let id = item["id"].as_i64().expect("id");
    let shown = s.get(&format!("/api/v1/review/{id}"), &[("authorization", &reviewer)]);
    assert_eq!(shown.status, 200, "{}", shown.body);
    let differences = shown.json()["differences"].clone();
    assert!(differences.to_string().contains("红旗街1号B座"), "{differences}");
    s.get("/api/v1/review/999999", &[("authorization", &reviewer)]).problem(404);
    // The unsigned preview, byte for byte what `review show` names in the store.
    let preview = s.send_binary(
        "GET",
        &format!("/api/v1/review/{id}/preview"),
        &[("authorization", &reviewer)],
        None,
    );
    assert_eq!((preview.status, preview.content_type.as_str()), (200, "application/pdf"));
    assert_eq!(
        Some(elicence::registry::sha256_hex(&preview.bytes).as_str()),
        shown.json()["preview_sha256"].as_str(),
        "the stored preview"
    );
    assert!(preview.bytes.starts_with(b"%PDF-"));
    let no_token = s.send_binary("GET", &format!("/api/v1/review/{id}/preview"), &[], None);
    assert_eq!(no_token.status, 401);
    let as_department = [("authorization", med.as_str())];
    let refused =
        s.send_binary("GET", &format!("/api/v1/review/{id}/preview"), &as_department, None);
    assert_eq!(refused.status, 401, "a department token is not an operator's");
    s.get("/api/v1/review/999999/preview", &[("authorization", &reviewer)]).problem(404);

    // Four eyes: the collector holds no reviewer role; the reviewer approves.
    let approve = |token: &str, body: Value| {
        s.post_with(
            "/api/v1/review/approve",
            "application/json",
            body.to_string().as_bytes(),
            &[("authorization", token)],
        )
    };
    approve(&collector, json!({"ids": [id]})).problem(403);
    approve(&reviewer, json!({"ids": [], "run": null})).problem(400);
    let r = approve(&reviewer, json!({"ids": [id]}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["approved"], 1, "{}", r.body);
    assert_eq!(r.json()["changed"], 1, "{}", r.body);
    let r = approve(&reviewer, json!({"ids": [id]}));
    assert_eq!(r.json()["not_pending"], json!([id]), "{}", r.body);
    let reject = s.post_with(
        "/api/v1/review/reject",
        "application/json",
        json!({"ids": [id], "reason": "重复"}).to_string().as_bytes(),
        &[("authorization", &reviewer)],
    );
    assert_eq!(reject.json()["items"][0]["outcome"], "already_decided", "{}", reject.body);
    let audit = f.audit();
    assert!(audit.iter().any(|e| e.0 == "operator_token" && e.1 == "reviewer"));
    assert!(
        audit.iter().any(|e| e.0 == "operator_denied" && e.1 == "collector"),
        "refusal audited"
    );

    // The department learns of the change (变更) through its events.
    let r = s.get(&format!("/api/v1/events?since={cursor}"), &[("authorization", &med)]);
    assert_eq!(r.status, 200, "{}", r.body);
    let events = r.json()["events"].clone();
    assert!(
        events.as_array().is_some_and(|e| e.iter().any(|e| e["kind"] == "changed")),
        "{events}"
    );
    s.get("/api/v1/events?since=x", &[("authorization", &med)]).problem(400);

    // Disabling the reviewer cuts its live token.
    run_expect(as_op("admin").args(["operator", "disable", "reviewer", "--operator", "admin"]), 0);
    s.get("/api/v1/review", &[("authorization", &reviewer)]).problem(401);
    s.check_openapi();
    let _ = s.stop();
}

/// `elicence audit verify` on the fixture's registry: exit 0 and the entry count.
fn audit_verified(f: &Fixture) -> u64 {
    let out = run_expect(f.cmd().args(["audit", "verify", "--json"]), 0);
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["intact"], true, "{v}");
    v["entries"].as_u64().expect("entries")
}

#[test]
fn concurrent_answers_each_leave_their_audit_entry_in_one_intact_chain() {
    // Answers are audited through the server's group commit: many at once, every one of them
    // answered has its entry, refusals theirs, and the chain verifies.
    let f = Fixture::new();
    let s = f.serve(&["--rate", "100000", "--burst", "100000", "--db-connections", "3"]);
    let med = s.bearer(MED, &f.med);
    let market = s.bearer(MARKET, &f.market);
    let before = f.audit().len();
    let (clients, each) = (12, 15);
    let answers: Vec<(u16, bool)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let (s, token) = (&s, if c % 4 == 3 { &market } else { &med });
                scope.spawn(move || {
                    (0..each)
                        .map(|_| {
                            let path = format!("/api/v1/licences/{CURRENT}");
                            let r = s.get(&path, &[("authorization", token), ("x-reason", REASON)]);
                            (r.status, c % 4 == 3)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("client")).collect()
    });
    let answered = answers.iter().filter(|(status, _)| *status == 200).count();
    let refused = answers.iter().filter(|(status, _)| *status == 403).count();
    assert_eq!(answered, clients * each * 3 / 4, "{answers:?}");
    assert_eq!(refused, clients * each / 4, "MARKET is outside the conditional scope");
    assert!(answers.iter().all(|(status, market)| *status == if *market { 403 } else { 200 }));
    let audit = f.audit();
    let new = &audit[before..];
    let queries = new.iter().filter(|e| e.0 == "share_query" && e.1 == MED).count();
    let denials = new.iter().filter(|e| e.0 == "share_denied" && e.1 == MARKET).count();
    assert_eq!((queries, denials), (answered, refused), "one entry per answer and per refusal");
    assert_eq!(new.len(), answered + refused);
    assert_eq!(audit_verified(&f), audit.len() as u64);
    s.check_openapi();
}

#[test]
fn no_answer_leaves_when_its_audit_entry_cannot_be_recorded() {
    let f = Fixture::new();
    let s = f.serve(&[]);
    let med = s.bearer(MED, &f.med);
    let market = s.bearer(MARKET, &f.market);
    let path = format!("/api/v1/licences/{CURRENT}");
    let headers = [("authorization", med.as_str()), ("x-reason", REASON)];
    assert_eq!(s.get(&path, &headers).status, 200);
    let before = f.audit().len();
    let db = rusqlite::Connection::open(f.data().join("registry.sqlite")).expect("db");
    db.execute_batch(
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log \
         BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
    )
    .expect("trigger");
    let r = s.get(&path, &headers);
    let p = r.problem(500);
    assert!(!r.body.contains(HOLDER) && !r.body.contains(NUMBER), "no licence data: {p}");
    // A refusal is audited too, so it is not sent without its entry either.
    assert_eq!(
        s.get(&path, &[("authorization", market.as_str()), ("x-reason", REASON)]).status,
        500
    );
    db.execute_batch("DROP TRIGGER refuse_audit;").expect("drop trigger");
    assert_eq!(s.get(&path, &headers).status, 200, "the server keeps serving");
    assert_eq!(f.audit().len(), before + 1, "only the answer after the trigger is gone");
    assert_eq!(audit_verified(&f) as usize, before + 1);
}
