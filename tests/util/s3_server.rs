//! A real S3 server on loopback inside the test process (s3s + s3s-fs, not a mock): objects are
//! files under a scratch folder (one sub-folder per bucket), so they outlive an `elicence`
//! process the test kills, and a test can damage one on disk. Requests are signed (SigV4) and
//! checked against one access key; PUT checksums are verified by the server.
//!
//! An access policy can refuse writes, to test what elicence does when a bucket refuses them:
//! every write into a named bucket, every write of one object, or every new object after a
//! budget of them. The server also counts the connections it accepts and logs every request's
//! operation and object key, so a test can see how elicence talked to it (several GETs at
//! once, a multipart upload).
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::SimpleAuth;
use s3s::path::S3Path;
use s3s::service::S3ServiceBuilder;
use s3s::{S3Result, s3_error};

pub const ACCESS_KEY: &str = "elicence-test";
pub const SECRET_KEY: &str = "elicence-test-secret-key";
pub const REGION: &str = "us-east-1";

/// The operations that write an object (or a part of one).
const WRITES: [&str; 6] = [
    "PutObject",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
    "CopyObject",
    "DeleteObject",
];

/// The writes that start a new object: what a write budget counts.
const NEW_OBJECTS: [&str; 2] = ["PutObject", "CreateMultipartUpload"];

/// Which writes the server refuses.
#[derive(Debug, Default)]
struct Refusals {
    /// Buckets into which every write is refused.
    buckets: HashSet<String>,
    /// `(bucket, key)` of objects every write of which is refused.
    objects: HashSet<(String, String)>,
    /// When set, the new objects still accepted; each accepted one counts down.
    budget: Option<u64>,
}

/// What the server saw: `(operation, bucket, key)` of every signed request, in order.
type Requests = Arc<Mutex<Vec<(String, String, String)>>>;

struct Policy {
    refusals: Arc<Mutex<Refusals>>,
    requests: Requests,
}

#[async_trait::async_trait]
impl S3Access for Policy {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        if cx.credentials().is_none() {
            return Err(s3_error!(AccessDenied, "signed requests only"));
        }
        let op = cx.s3_op().name();
        let (bucket, key) = match cx.s3_path() {
            S3Path::Object { bucket, key } => (bucket.to_string(), key.to_string()),
            S3Path::Bucket { bucket } => (bucket.to_string(), String::new()),
            S3Path::Root => (String::new(), String::new()),
        };
        lock(&self.requests).push((op.to_owned(), bucket.clone(), key.clone()));
        if !WRITES.contains(&op) {
            return Ok(());
        }
        let mut refusals = lock(&self.refusals);
        if refusals.buckets.contains(&bucket) {
            return Err(s3_error!(AccessDenied, "this bucket refuses writes"));
        }
        if refusals.objects.contains(&(bucket, key)) {
            return Err(s3_error!(AccessDenied, "this object refuses writes"));
        }
        if !NEW_OBJECTS.contains(&op) {
            return Ok(());
        }
        match &mut refusals.budget {
            Some(0) => Err(s3_error!(AccessDenied, "write budget exhausted")),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The running server; it stops with the test process.
pub struct S3Server {
    /// The scratch folder [`S3Server::start`] made (removed when the server is dropped).
    scratch: Option<tempfile::TempDir>,
    /// Where the objects are: one folder per bucket.
    root: PathBuf,
    pub endpoint: String,
    refusals: Arc<Mutex<Refusals>>,
    requests: Requests,
    connections: Arc<AtomicU64>,
}

impl S3Server {
    /// Starts a server on 127.0.0.1 (a free port) with its objects in a fresh scratch folder.
    pub fn start() -> S3Server {
        let dir = tempfile::tempdir().expect("scratch folder for the S3 server");
        let mut server = S3Server::start_in(dir.path());
        server.scratch = Some(dir);
        server
    }

    /// Starts a server on 127.0.0.1 (a free port) with its objects in `root` (which exists).
    pub fn start_in(root: &Path) -> S3Server {
        let fs = s3s_fs::FileSystem::new(root).expect("s3s-fs over the folder");
        let refusals = Arc::new(Mutex::new(Refusals::default()));
        let requests = Requests::default();
        let connections = Arc::new(AtomicU64::new(0));
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        builder.set_access(Policy { refusals: refusals.clone(), requests: requests.clone() });
        let service = builder.build();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let endpoint = format!("http://{}", listener.local_addr().expect("local address"));
        let accepted = connections.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("S3 server runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                loop {
                    let Ok((socket, _)) = listener.accept().await else { continue };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    // Without it every small response waits for the peer's delayed ACK.
                    let _ = socket.set_nodelay(true);
                    let service = service.clone();
                    tokio::spawn(async move {
                        let conn = ConnBuilder::new(TokioExecutor::new());
                        let _ = conn.serve_connection(TokioIo::new(socket), service).await;
                    });
                }
            });
        });
        S3Server {
            scratch: None,
            root: root.to_path_buf(),
            endpoint,
            refusals,
            requests,
            connections,
        }
    }

    /// Creates the bucket `name` (a folder of the server) and returns `s3://name`.
    pub fn bucket(&self, name: &str) -> String {
        std::fs::create_dir_all(self.root.join(name)).expect("bucket folder");
        format!("s3://{name}")
    }

    /// The file that holds object `key` of `bucket`.
    pub fn object_file(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.join(bucket).join(key)
    }

    /// Every object key of `bucket` (below `prefix`), sorted, with s3s-fs's own metadata files
    /// left out.
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let root = self.root.join(bucket);
        let mut out = Vec::new();
        let mut stack = vec![root.join(prefix)];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Some(key) = key_of(&root, &path) {
                    out.push(key);
                }
            }
        }
        out.sort();
        out
    }

    /// Sets the `AWS_*` environment that points elicence at this server.
    pub fn env<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env("AWS_ENDPOINT", &self.endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "false")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
    }

    /// From now on every write into `bucket` is refused (403 AccessDenied).
    pub fn refuse_writes_to(&self, bucket: &str) {
        lock(&self.refusals).buckets.insert(bucket.to_owned());
    }

    /// From now on every write of the object `key` of `bucket` is refused (403 AccessDenied),
    /// until [`S3Server::allow_writes_of`].
    pub fn refuse_writes_of(&self, bucket: &str, key: &str) {
        lock(&self.refusals).objects.insert((bucket.to_owned(), key.to_owned()));
    }

    /// Ends [`S3Server::refuse_writes_of`] for that object.
    pub fn allow_writes_of(&self, bucket: &str, key: &str) {
        lock(&self.refusals).objects.remove(&(bucket.to_owned(), key.to_owned()));
    }

    /// From now on only `n` more new objects (PutObject, CreateMultipartUpload) are accepted
    /// (None: no limit).
    pub fn write_budget(&self, n: Option<u64>) {
        lock(&self.refusals).budget = n;
    }

    /// `(operation, key)` of every request for an object of `bucket` so far (operations as
    /// s3s names them: `GetObject`, `PutObject`, `UploadPart`…), in order.
    pub fn requests(&self, bucket: &str) -> Vec<(String, String)> {
        lock(&self.requests)
            .iter()
            .filter(|(_, b, _)| b == bucket)
            .map(|(op, _, key)| (op.clone(), key.clone()))
            .collect()
    }

    /// TCP connections accepted so far: a client that sends requests one after another keeps
    /// reusing one; several requests in flight at once need one connection each.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }
}

/// The object key of a file under a bucket folder; `None` for s3s-fs's internal files.
fn key_of(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let key: Vec<&str> = rel.iter().map(|p| p.to_str()).collect::<Option<_>>()?;
    let key = key.join("/");
    let internal = key.split('/').any(|part| part.starts_with(".s3s") || part.starts_with('.'));
    (!internal).then_some(key)
}
