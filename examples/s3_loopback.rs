//! A real S3 server on loopback for the end-to-end benchmark (`scripts/bench-e2e.sh --store s3`):
//! the tests' in-process s3s-fs server (`tests/util/s3_server.rs`, with TCP_NODELAY), its objects
//! in DIR, one bucket `bench`. Prints the endpoint on stdout, then serves until killed.
//!
//! Usage: `s3_loopback DIR`; point elicence at it with AWS_ENDPOINT=<printed endpoint>,
//! AWS_ALLOW_HTTP=true and the test credentials (`elicence-test` / `elicence-test-secret-key`).

#[path = "../tests/util/s3_server.rs"]
mod s3_server;

use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(dir) = std::env::args_os().nth(1) else {
        return Err("usage: s3_loopback DIR".into());
    };
    std::fs::create_dir_all(&dir)?;
    let server = s3_server::S3Server::start_in(std::path::Path::new(&dir));
    server.bucket("bench");
    let mut out = std::io::stdout();
    writeln!(out, "{}", server.endpoint)?;
    out.flush()?;
    loop {
        std::thread::park();
    }
}
