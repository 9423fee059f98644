#!/usr/bin/env bash
# What `--tsa` costs a run: ROUNDS rounds of the same run without and with `--tsa` (bench TSA
# on loopback, EC P-256, `--pades-level b-t`), alternated so that a drifting machine weighs on
# both alike, each in a new data folder with the fixture keys (no key generation in the time).
#
# Usage: scripts/bench-tsa-ab.sh ROUNDS [ROWS] [--shared]
#   default: the run on CPU 0 and the TSA on CPU 1 (`taskset`), as a TSA on a machine of its
#   own, so the difference is what our client costs; --shared: both on all cores (the TSA's
#   own signing then comes off the run's cores too).
# Prints one line per run (round, mode, licences/s over the whole command, the TSA's CPU
# seconds during it) and the mean difference. Needs a release build: CARGO_TARGET_DIR (default
# target); ELICENCE_BIN and BENCH_TSA_BIN measure other builds of the two.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:?usage: bench-tsa-ab.sh ROUNDS [ROWS] [--shared]}
rows=${2:-10000}
pin=(taskset -c 0)
tsa_pin=(taskset -c 1)
if [ "${3:-}" = --shared ] || [ "${2:-}" = --shared ]; then
  pin=() tsa_pin=()
  [ "${2:-}" = --shared ] && rows=10000
fi
target=${CARGO_TARGET_DIR:-target}
bin=${ELICENCE_BIN:-$target/release/elicence}
cargo build --release --locked --bin elicence --example bench_tsa >&2
work=$(mktemp -d)
trap 'kill "$tsa_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin" gen pipelines/food-business-permit.toml --rows "$rows" --seed 1 --out "$work/export.csv" >/dev/null
scripts/bench-tsa-keys.sh "$work/tsa" >/dev/null
"${tsa_pin[@]}" "${BENCH_TSA_BIN:-$target/release/examples/bench_tsa}" "$work/tsa" 0 --ec \
  >"$work/tsa.url" &
tsa_pid=$!
until [ -s "$work/tsa.url" ]; do sleep 0.1; done
url=$(cat "$work/tsa.url")
results="$work/results"
# utime + stime of the TSA process, in clock ticks (proc(5)).
tsa_cpu() { awk '{ print $14 + $15 }' "/proc/$tsa_pid/stat"; }
for round in $(seq 1 "$rounds"); do
  for mode in plain tsa; do
    rm -rf "$work/data"
    extra=()
    [ "$mode" = tsa ] && extra=(--tsa "$url" --pades-level b-t)
    tsa_cpu_before=$(tsa_cpu)
    start=$(date +%s.%N)
    "${pin[@]}" "$bin" run pipelines/food-business-permit.toml --input "$work/export.csv" \
      --data "$work/data" --json --progress never --quiet --formats pdf,xml --segments \
      --keys fixtures/keys "${extra[@]}" >/dev/null 2>"$work/stderr" \
      || { cat "$work/stderr" >&2; exit 1; }
    end=$(date +%s.%N)
    rate=$(python3 -c "print(round($rows / ($end - $start), 1))")
    # The TSA's own CPU over the run (user + system), in seconds.
    tsa_s=$(python3 -c "print(round(($(tsa_cpu) - $tsa_cpu_before) / $(getconf CLK_TCK), 2))")
    echo "$round $mode $rate $tsa_s" | tee -a "$results"
  done
done
python3 - "$results" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
plain = [float(r[2]) for r in rows if r[1] == "plain"]
tsa = [float(r[2]) for r in rows if r[1] == "tsa"]
diffs = [(t / p - 1) * 100 for p, t in zip(plain, tsa)]
spread = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else float("nan")
print(f"without --tsa {statistics.mean(plain):.1f}/s, with {statistics.mean(tsa):.1f}/s: "
      f"{statistics.mean(diffs):+.1f} % (round by round, standard error {spread:.1f})")
tsa_cpu = [float(r[3]) for r in rows if r[1] == "tsa"]
print(f"the TSA's own CPU a run with --tsa: {statistics.mean(tsa_cpu):.2f} s")
EOF
