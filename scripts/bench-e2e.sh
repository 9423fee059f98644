#!/usr/bin/env bash
# End-to-end benchmark: generates N rows with `elicence gen`, then measures
#   1. validate only (read → normalise → validate, no registry): rows/s and peak RSS;
#   2. the whole run (… → render → sign PDF and XML [and OFD] → load) into a fresh SQLite
#      registry: licences/s, peak RSS and the busy time of each stage (from the run's JSON report).
#      With --store s3 the store is a bucket on a real S3 server on loopback (the tests'
#      s3s-fs server, `examples/s3_loopback.rs`, started here) instead of a local folder.
#      With --tsa every signature gets an RFC 3161 timestamp (PDF and XML B-T, the OFD seal's
#      timeStamp with --formats …,ofd) from the bench TSA on loopback (`examples/bench_tsa.rs`
#      with an EC P-256 key from `scripts/bench-tsa-keys.sh`, started here; its own CPU time is
#      printed on stderr, since it shares the cores with the run).
#      With --segments each chunk's files are packed into one store object (`run --segments`).
#      With --keys DIR the run signs with that key set (e.g. fixtures/keys, which has every issuer
#      of the shipped pipelines) instead of making development keys at start-up: RSA key
#      generation takes a random time per issuer, noise in a comparison of two runs.
#      With --pin validate and the run are held to CPU 0 and the bench TSA to CPU 1 (`taskset`),
#      as a TSA on a machine of its own would be: the run's rate with and without --tsa then
#      differs by what the client does, not by the TSA's CPU taken from the run's cores.
# Usage: scripts/bench-e2e.sh ROWS [--format csv|csv-gbk|xlsx] [--defects RATE] [--jobs N]
#                             [--pipeline FILE] [--formats pdf,xml[,ofd]] [--validate-only]
#                             [--store folder|s3] [--tsa] [--pin] [--segments] [--keys DIR]
#                             [--keep DIR]
# Prints one Markdown table row per measurement, ready for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-common.sh

rows="${1:?usage: scripts/bench-e2e.sh ROWS [options]}"
shift
format=csv
defects=0.05
jobs=""
pipeline=pipelines/food-business-permit.toml
validate_only=false
formats=pdf,xml
keep=""
store=folder
tsa=false
run_pin=()
keys_args=()
keys_label=""
tsa_pin=()
pin_label=""
segments_args=()
segments_label=""
while [ $# -gt 0 ]; do
  case "$1" in
    --format) format="$2"; shift 2 ;;
    --defects) defects="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --pipeline) pipeline="$2"; shift 2 ;;
    --formats) formats="$2"; shift 2 ;;
    --validate-only) validate_only=true; shift ;;
    --keep) keep="$2"; shift 2 ;;
    --store) store="$2"; shift 2 ;;
    --tsa) tsa=true; shift ;;
    --keys) keys_args=(--keys "$2"); keys_label=", --keys $2"; shift 2 ;;
    --pin) run_pin=(taskset -c 0); tsa_pin=(taskset -c 1); pin_label=", run on CPU 0"; shift ;;
    --segments) segments_args=(--segments); segments_label=", --segments"; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

setup_bench "$keep"
ext=csv
[ "$format" = xlsx ] && ext=xlsx
input="$work/export-$rows.$ext"
jobs_arg=()
[ -n "$jobs" ] && jobs_arg=(--jobs "$jobs")

# Peak RSS and wall time of a command, via GNU time; stdout goes to $1.
measure() {
  local out="$1"; shift
  /usr/bin/time -f '%e %M %U %S' -o "$work/time.txt" "$@" >"$out" 2>"$work/stderr.txt" || {
    local rc=$?
    # exit 5 (reject rate) and the like still produce a report; anything else is a failure.
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then cat "$work/stderr.txt" >&2; exit "$rc"; fi
  }
  read -r wall rss_kb user sys <"$work/time.txt"
}

if [ ! -f "$input" ]; then
  measure /dev/null "$bin" gen "$pipeline" --rows "$rows" --format "$format" \
    --defects "$defects" --seed 1 --out "$input"
  echo "gen: $rows rows ($format) in ${wall}s" >&2
fi
size_mb=$(python3 -c "import os,sys; print(round(os.path.getsize(sys.argv[1])/1e6,1))" "$input")
threads="${jobs:-$(nproc)}"
[ ${#run_pin[@]} -gt 0 ] && threads=1
machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"

measure "$work/validate.json" "${run_pin[@]}" "$bin" validate "$pipeline" --input "$input" --json "${jobs_arg[@]}"
python3 - "$work/validate.json" "$rows" "$wall" "$rss_kb" "$user" "$sys" "$format" "$size_mb" "$threads" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
rows, wall, rss, user, sys_ = int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
c = report["counts"]
assert c["read"] == rows and report["reconciled"], f"validate does not reconcile: {c}"
st = [i["stages"] for i in report["inputs"]]
read_s = sum(s["read_s"] for s in st); val_s = sum(s["validate_s"] for s in st)
print(f"| validate only | {rows:,} | {sys.argv[7]} ({sys.argv[8]} MB) | {sys.argv[9]} | {wall:.2f} s | "
      f"**{rows / wall:,.0f} rows/s** | {rss / 1024:.0f} MB | CPU {user + sys_:.2f} s; read {read_s:.2f} s, validate {val_s:.2f} s |")
EOF

$validate_only && exit 0

# The servers started below, stopped on exit (with the work folder, unless kept).
servers=()
stop_servers() {
  for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -n "$keep" ] || rm -rf "$work"
}
trap stop_servers EXIT

store_args=()
store_label=""
if [ "$store" = s3 ]; then
  cargo build --release --locked --example s3_loopback >&2
  rm -rf "$work/s3"
  mkdir -p "$work/s3"
  "$CARGO_TARGET_DIR/release/examples/s3_loopback" "$work/s3" >"$work/s3.endpoint" &
  servers+=($!)
  until [ -s "$work/s3.endpoint" ]; do sleep 0.1; done
  export AWS_ENDPOINT="$(cat "$work/s3.endpoint")" AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 \
    AWS_ACCESS_KEY_ID=elicence-test AWS_SECRET_ACCESS_KEY=elicence-test-secret-key
  store_args=(--store s3://bench/store)
  store_label=", store in a bucket on loopback"
fi

tsa_args=()
tsa_label=""
if $tsa; then
  cargo build --release --locked --example bench_tsa >&2
  rm -rf "$work/tsa"
  scripts/bench-tsa-keys.sh "$work/tsa"
  # Port 0: the TSA binds a free loopback port and prints its URL.
  "${tsa_pin[@]}" "$CARGO_TARGET_DIR/release/examples/bench_tsa" "$work/tsa" 0 --ec >"$work/tsa.url" &
  tsa_pid=$!
  servers+=("$tsa_pid")
  until [ -s "$work/tsa.url" ]; do
    kill -0 "$tsa_pid" 2>/dev/null || { echo "the bench TSA did not start" >&2; exit 1; }
    sleep 0.1
  done
  tsa_args=(--tsa "$(cat "$work/tsa.url")" --pades-level b-t)
  tsa_label=", --tsa: bench TSA on loopback (EC P-256)"
  [ ${#tsa_pin[@]} -gt 0 ] && tsa_label="$tsa_label on CPU 1"
fi

data="$work/data"
fresh_data_dir "$data"
measure "$work/run.json" "${run_pin[@]}" "$bin" run "$pipeline" --input "$input" --data "$data" --json \
  --progress never --quiet --formats "$formats" "${jobs_arg[@]}" "${store_args[@]}" \
  "${tsa_args[@]}" "${segments_args[@]}" "${keys_args[@]}"
if $tsa; then
  # utime + stime of the TSA process (fields 14 and 15 of /proc/PID/stat), then stop it.
  tsa_cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$tsa_pid/stat")
  kill "$tsa_pid" 2>/dev/null || true
  echo "bench TSA: CPU ${tsa_cpu} s (not in the run's CPU below)" >&2
fi
python3 - "$work/run.json" "$rows" "$wall" "$rss_kb" "$user" "$sys" "$format" "$size_mb" "$threads" "$formats$store_label$tsa_label$segments_label$pin_label$keys_label" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
rows, wall, rss, user, sys_ = int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
c = report["counts"]
assert c["read"] == rows and report["reconciled"], f"run does not reconcile: {c}"
signed = c["issued"] + c["changed"] + c["revoked"]
s = report["stages"]
print(f"| run (end to end, {sys.argv[10]}) | {rows:,} | {sys.argv[7]} ({sys.argv[8]} MB) | {sys.argv[9]} | {wall:.1f} s | "
      f"**{signed / wall:,.0f} licences/s** ({signed:,} signed) | {rss / 1024:.0f} MB | CPU {user + sys_:.1f} s; "
      f"read {s['read_s']:.1f} s, validate {s['validate_s']:.1f} s, decide {s['decide_s']:.1f} s, "
      f"render+sign {s['render_sign_s']:.1f} s, load {s['load_s']:.1f} s (its CPU {s.get('load_cpu_s', 0):.1f} s) |")
EOF
echo "machine: $machine; $(date -u +%Y-%m-%d); $(git rev-parse --short HEAD)" >&2
