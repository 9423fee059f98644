#!/usr/bin/env bash
# Load benchmark of `elicence serve` (issue 15). Builds nothing: give it a release binary.
#   1. a registry of ROWS generated food permits (`elicence gen`, no defects) made by
#      `elicence run` with development keys, and one department (长春市医疗保障局);
#   2. `elicence serve` on loopback, the rate limit raised by flags so that no request is
#      refused (it stays on: 20/s, burst 100 by default);
#   3. wrk against GET /v/<id> (public page), GET /api/v1/licences/<id> (status API, a
#      department token, audited) and POST /api/v1/verify (a signed PDF of the run), cycling
#      through the registry's current identifiers (scripts/bench-serve.lua);
#   4. per route: requests/s, p50/p99/max latency, errors, the server's CPU per request and
#      its peak RSS (VmHWM); then the server is stopped and `elicence audit verify` must pass,
#      with one `query` entry per answered status lookup (counted by the server's /metrics).
# Usage: scripts/bench-serve.sh BINARY [--rows N] [--duration 30s] [--connections 64]
#                               [--threads 2] [--routes page,status,verify] [--keep DIR]
#                               [-- EXTRA SERVE FLAGS]
set -euo pipefail
cd "$(dirname "$0")/.."

bin="$(realpath "${1:?usage: scripts/bench-serve.sh BINARY [options]}")"
shift
rows=3000
duration=30s
connections=64
threads=2
routes=page,status,verify
keep=""
serve_extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) rows="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --routes) routes="$2"; shift 2 ;;
    --keep) keep="$2"; shift 2 ;;
    --) shift; serve_extra=("$@"); break ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "wrk is missing (Debian: apt-get install wrk)" >&2; exit 2; }

work="${keep:-$(mktemp -d /var/tmp/elicence-bench-serve.XXXXXX)}"
mkdir -p "$work"
serve_pid=""
cleanup() {
  if [ -n "$serve_pid" ]; then kill "$serve_pid" 2>/dev/null || true; fi
  if [ -z "$keep" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

export ELICENCE_DATA="$work/data"
pipeline=pipelines/food-business-permit.toml
med=11220100MB18300819
reason=%E5%8C%BB%E4%BF%9D%E5%AE%9A%E7%82%B9%E8%B5%84%E6%A0%BC%E5%AE%A1%E6%A0%B8  # 医保定点资格审核

if [ ! -s "$work/med.cred" ]; then
  "$bin" gen "$pipeline" --rows "$rows" --defects 0 --seed 1 --out "$work/export.csv" 2>/dev/null
  "$bin" run "$pipeline" --input "$work/export.csv" --json --progress never --quiet >"$work/run.json"
  "$bin" dept add "$med" --name 长春市医疗保障局 --level prefectural --region 220100 >"$work/med.cred"
fi

# Current versions' identifiers, and the signed PDF of one of them (the store keeps it by hash).
python3 - "$work" <<'EOF'
import sqlite3, sys, os
work = sys.argv[1]
db = sqlite3.connect(os.path.join(work, "data", "registry.sqlite"))
ids = [r[0] for r in db.execute(
    "SELECT identifier FROM versions WHERE superseded_by IS NULL AND revoked_at IS NULL ORDER BY id")]
open(os.path.join(work, "ids.txt"), "w").write("\n".join(ids) + "\n")
sha = db.execute(
    "SELECT f.sha256 FROM version_files f JOIN versions v ON v.id = f.version_id "
    "WHERE f.kind = 'pdf' AND v.identifier = ?", (ids[0],)).fetchone()[0]
for root, _, files in os.walk(os.path.join(work, "data", "store")):
    for name in files:
        if name.startswith(sha):
            open(os.path.join(work, "licence.pdf"), "wb").write(
                open(os.path.join(root, name), "rb").read())
print(f"{len(ids)} current licences; PDF {os.path.getsize(os.path.join(work, 'licence.pdf')):,} bytes",
      file=sys.stderr)
EOF

# Audit entries from here on are this server's (a kept folder holds earlier runs' too).
audit_before="$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COALESCE(MAX(seq),0) FROM audit_log").fetchone()[0])' "$work/data/registry.sqlite")"
"$bin" serve --listen 127.0.0.1:0 --rate 1000000 --burst 1000000 --token-ttl 3600 \
  "${serve_extra[@]}" 2>"$work/serve.log" &
serve_pid=$!
url=""
for _ in $(seq 1 600); do
  url="$(grep -o '"url":"[^"]*"' "$work/serve.log" 2>/dev/null | head -1 | cut -d'"' -f4 || true)"
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { cat "$work/serve.log" >&2; exit 1; }
token="$(curl -sf -X POST "$url/api/v1/token" -H 'content-type: application/json' \
  -d "{\"department\":\"$med\",\"credential\":\"$(cat "$work/med.cred")\"}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"

# CPU seconds (user + system) the server has used so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$serve_pid/stat"; }
hwm_mb() { awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$serve_pid/status"; }
# Answers of a route with status 200 so far, from the server's own metrics.
answered() {
  curl -sf "$url/metrics" |
    awk -v r="route=\"$1\",status=\"200\"" 'index($0, r) { n += $NF } END { print n + 0 }'
}

echo "| route | req/s | p50 | p99 | max | errors (connect/read/write/timeout/non-2xx) | server CPU per request | VmHWM | load avg (1 min, before) |"
echo "|---|---|---|---|---|---|---|---|---|"
for mode in ${routes//,/ }; do
  case "$mode" in
    page) route='/v/{identifier}'; label='GET /v/<id>' ;;
    status) route='/api/v1/licences/{identifier}'; label='GET /api/v1/licences/<id>' ;;
    verify) route='/api/v1/verify'; label="POST /api/v1/verify ($(stat -c %s "$work/licence.pdf") B PDF)" ;;
    *) echo "unknown route $mode" >&2; exit 2 ;;
  esac
  load="$(cut -d' ' -f1 /proc/loadavg)"
  cpu_before="$(cpu_s)"
  out="$(BENCH_MODE="$mode" BENCH_IDS="$work/ids.txt" BENCH_TOKEN="$token" BENCH_REASON="$reason" \
    BENCH_FILE="$work/licence.pdf" \
    wrk -t"$threads" -c"$connections" -d"$duration" --timeout 10s -s scripts/bench-serve.lua "$url")"
  cpu_after="$(cpu_s)"
  line="$(grep '^RESULT' <<<"$out")"
  eval "${line#RESULT }"
  cpu_us=$(awk -v a="$cpu_before" -v b="$cpu_after" -v n="$requests" 'BEGIN { printf "%.0f", (b - a) * 1e6 / n }')
  echo "| $label | **$rps** | $p50_ms ms | $p99_ms ms | $max_ms ms | $connect/$read/$write/$timeout/$non2xx | $cpu_us µs | $(hwm_mb) MB | $load |"
done

sleep 1
status_answers="$(answered '/api/v1/licences/{identifier}')"
verify_answers="$(answered '/api/v1/verify')"
kill -TERM "$serve_pid"
wait "$serve_pid" || true
serve_pid=""
python3 - "$work/data/registry.sqlite" "$status_answers" "$verify_answers" "$audit_before" "$connections" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
after = int(sys.argv[4])
count = lambda where: db.execute(f"SELECT count(*) FROM audit_log WHERE seq > ? AND {where}", (after,)).fetchone()[0]
queries = count("action = 'share_query'")
verifies = count("action = 'verify' AND operator = 'public'")
status, verify, in_flight = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[5])
print(f"audit: {queries:,} query entries for {status:,} status answers (200); "
      f"{verifies:,} verify entries for {verify:,} verify answers")
# Every answer has its entry. A request still in flight when wrk stopped has its entry but no
# answer in /metrics (the client was gone): at most one per connection and route.
assert status <= queries <= status + in_flight, "status answers and entries differ"
assert verify <= verifies <= verify + in_flight, "verify answers and entries differ"
EOF
"$bin" audit verify
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); $(date -u '+%Y-%m-%d %H:%M UTC'); $(git rev-parse --short HEAD); wrk -t$threads -c$connections -d$duration" >&2
