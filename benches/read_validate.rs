//! Criterion bench: read + normalise + validate of a UTF-8 CSV food-business-permit export,
//! through the same engine `elicence validate` uses (both cores). Input is generated once, outside
//! the timing, by repeating the bundled fixture's rows with fresh licence numbers.

use std::io::Write;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use elicence::engine::Dedupe;
use elicence::engine::{self, Outcome, RowSink};
use elicence::pipeline;

const ROWS: usize = 100_000;

fn make_input(dir: &std::path::Path) -> std::path::PathBuf {
    let fixture =
        std::fs::read_to_string("fixtures/food-business-permit/export-utf8.csv").expect("fixture");
    let mut lines = fixture.split("\r\n");
    let header = lines.next().expect("header");
    // Single-line, valid rows of the fixture as templates.
    let templates: Vec<&str> =
        lines.filter(|l| l.starts_with("JY1220104") && !l.contains('"')).take(3).collect();
    let path = dir.join("bench.csv");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    writeln!(f, "{header}").expect("write");
    for i in 0..ROWS {
        let t = templates[i % templates.len()];
        // A distinct licence number per row so that rows are not duplicates.
        let row = format!("JY1220104{:07}{}", i, &t[16..]);
        writeln!(f, "{row}").expect("write");
    }
    path
}

/// Counts valid rows; the bench measures the engine, not output writing.
struct CountValid(u64);

impl RowSink for CountValid {
    fn headers(&mut self, _: &[String]) -> anyhow::Result<()> {
        Ok(())
    }
    fn row(&mut self, o: Outcome) -> anyhow::Result<()> {
        if let Outcome::Valid(_) = o {
            self.0 += 1;
        }
        Ok(())
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = make_input(dir.path());
    let plan =
        pipeline::load(std::path::Path::new("pipelines/food-business-permit.toml")).expect("plan");
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 27).expect("date");
    let pool = rayon::ThreadPoolBuilder::new().build().expect("thread pool");
    let mut g = c.benchmark_group("read_validate");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(10);
    g.bench_function("utf8_csv_100k", |b| {
        b.iter(|| {
            let mut dedupe = Dedupe::default();
            let mut sink = CountValid(0);
            engine::validate_input(&plan, &input, today, &pool, &mut dedupe, &mut sink)
                .expect("validates");
            assert!(sink.0 > 0);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
