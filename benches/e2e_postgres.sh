#!/usr/bin/env bash
# End-to-end licences/s: one `elicence run` into SQLite vs two `--shard K/2` processes at once
# into PostgreSQL, same generated input, same key (fixtures/keys). Figures go in BENCHMARKS.md.
#
#   cargo build --release
#   benches/e2e_postgres.sh [ROWS] [ADMIN_URL]      # defaults: 4000, postgres://$USER@127.0.0.1:5432/test
#   ORDER=pg-first benches/e2e_postgres.sh          # PostgreSQL first (alternate to see drift)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${ELICENCE_BIN:-${CARGO_TARGET_DIR:-target}/release/elicence}
ROWS=${1:-4000}
ADMIN=${2:-postgres://${USER:-postgres}@127.0.0.1:5432/test}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
DB=elicence_bench_$$
URL=${ADMIN%/*}/$DB
"$BIN" gen pipelines/food-business-permit.toml --rows "$ROWS" --format csv --defects 0.05 \
  --seed 21 --out "$WORK/in.csv" 2>/dev/null
psql -q "$ADMIN" -c "CREATE DATABASE $DB"
trap 'psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"; rm -rf "$WORK"' EXIT
run() { "$BIN" run pipelines/food-business-permit.toml --input "$WORK/in.csv" --keys fixtures/keys \
          --progress never --json "$@" 2>/dev/null; }
sqlite() {
  local t=$(date +%s.%N); run --data "$WORK/sqlite" > "$WORK/sqlite.json"
  echo "$t $(date +%s.%N)" > "$WORK/sqlite.t"
}
postgres() {
  local t=$(date +%s.%N)
  run --data "$WORK/pg" --registry "$URL" --shard 0/2 > "$WORK/s0.json" &
  local p0=$!
  run --data "$WORK/pg" --registry "$URL" --shard 1/2 > "$WORK/s1.json" &
  wait $p0 $!
  echo "$t $(date +%s.%N)" > "$WORK/pg.t"
}
if [ "${ORDER:-}" = pg-first ]; then postgres; sqlite; else sqlite; postgres; fi
python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
def made(f):
    c = json.load(open(f"{w}/{f}"))["counts"]
    return c["issued"] + c["changed"] + c["revoked"]
def secs(f):
    a, b = map(float, open(f"{w}/{f}").read().split())
    return b - a
s, p = made("sqlite.json"), made("s0.json") + made("s1.json")
rs, rp = s / secs("sqlite.t"), p / secs("pg.t")
print(f"sqlite, 1 process:      {s} licences in {secs('sqlite.t'):.1f} s = {rs:.1f} licences/s")
print(f"postgres, 2 shards:     {p} licences in {secs('pg.t'):.1f} s = {rp:.1f} licences/s")
print(f"postgres / sqlite:      {rp / rs:.2f}")
PY
uptime
