//! Client-side cost of an RFC 3161 timestamp, the pieces `--tsa` adds to every signature:
//! the request (imprint, nonce, DER), checking a reply (`accept_reply`), the CMS with the
//! token in its unsigned attribute against the same CMS without, and the whole `stamp` (HTTP
//! round trip to the bench TSA on loopback, `examples/bench_tsa.rs` with an EC P-256 key,
//! serving in this process on its own threads).
//!
//! Times are CPU time of the benchmarking thread (`CLOCK_THREAD_CPUTIME_ID`): for
//! `round_trip`, what our client spends, in user space and in the kernel (the loopback send
//! runs the receiving side's TCP in the sender's context), not the TSA's signature. Keys are
//! made once in a temporary folder by `scripts/bench-tsa-keys.sh` (needs openssl); setup is
//! outside the timing.
//!
//! `cargo bench --bench timestamp -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use elicence::sign::RsaSigner;
use elicence::sign::signed_data::build_detached_cms;
use elicence::timestamp::token::{accept_reply, request};
use elicence::timestamp::{HttpTsa, Token, Tsa, TsaError, imprint_of};

#[path = "common/thread_cpu.rs"]
mod thread_cpu;
use thread_cpu::ThreadCpuTime;

// The bench TSA runs in this process; `main` and what only it uses are unused here.
#[allow(dead_code)]
#[path = "../examples/bench_tsa.rs"]
mod bench_tsa;

/// A TSA that hands out one token it was given, for the cost of embedding it.
#[derive(Debug)]
struct CannedTsa(Token);

impl Tsa for CannedTsa {
    fn stamp(&self, _message: &[u8]) -> Result<Token, TsaError> {
        Ok(self.0.clone())
    }
    fn url(&self) -> &str {
        "canned"
    }
}

fn bench_timestamp(c: &mut Criterion<ThreadCpuTime>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Ok(dir) = tempfile::tempdir() else {
        eprintln!("timestamp bench skipped: no temporary folder");
        return;
    };
    let keys =
        Command::new("bash").arg(root.join("scripts/bench-tsa-keys.sh")).arg(dir.path()).output();
    if !keys.as_ref().is_ok_and(|out| out.status.success()) {
        eprintln!("timestamp bench skipped: scripts/bench-tsa-keys.sh failed: {keys:?}");
        return;
    }
    let authority = match bench_tsa::Authority::load(dir.path(), bench_tsa::KeyFiles::Ec) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("timestamp bench skipped: {e}");
            return;
        }
    };

    let message = [0x5Au8; 256]; // an RSA-2048 signature value
    let Ok((req, query)) = imprint_of(&message).and_then(|i| request(&i, &[7; 8])) else {
        eprintln!("timestamp bench skipped: request");
        return;
    };
    let Ok(reply) = authority.answer(&query) else {
        eprintln!("timestamp bench skipped: the bench TSA did not answer");
        return;
    };
    let Ok(token) = accept_reply(&req, &reply) else {
        eprintln!("timestamp bench skipped: the reply was refused");
        return;
    };
    eprintln!("reply {} bytes, token {} bytes", reply.len(), token.der.len());

    let mut group = c.benchmark_group("timestamp");
    group.throughput(Throughput::Elements(1));
    group.bench_function("request", |b| {
        b.iter(|| imprint_of(black_box(&message)).and_then(|i| request(&i, &[7; 8])))
    });
    group.bench_function("accept_reply", |b| b.iter(|| accept_reply(&req, black_box(&reply))));

    // Inside the validity of the committed test certificate (2026-11-26 … 2036-11-23).
    let at = Utc.with_ymd_and_hms(2027, 1, 2, 3, 4, 5).single().unwrap_or_default();
    match RsaSigner::load(&root.join("fixtures/keys"), None, at) {
        Ok(signer) => {
            let digest = [0x11u8; 32];
            let canned = CannedTsa(token);
            group.bench_function("cms_without_token", |b| {
                b.iter(|| build_detached_cms(&signer, black_box(&digest), None))
            });
            group.bench_function("cms_with_token", |b| {
                b.iter(|| build_detached_cms(&signer, black_box(&digest), Some(&canned)))
            });
        }
        Err(e) => eprintln!("cms benches skipped: {e}"),
    }

    let running = match "127.0.0.1:0".parse().map(|addr| bench_tsa::start(authority, addr)) {
        Ok(Ok(running)) => running,
        _ => {
            eprintln!("round_trip bench skipped: the bench TSA did not start");
            return;
        }
    };
    match HttpTsa::new(&running.url, Duration::from_secs(30)) {
        Ok(client) => {
            let client = Arc::new(client);
            group.bench_function("round_trip", |b| b.iter(|| client.stamp(black_box(&message))));
        }
        Err(e) => eprintln!("round_trip bench skipped: {e}"),
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = bench_timestamp
}
criterion_main!(benches);
