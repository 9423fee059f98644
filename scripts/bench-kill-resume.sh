#!/usr/bin/env bash
# Backfill survival benchmark: generates ROWS food permits, starts `elicence run` into a fresh
# SQLite registry with live progress (plain log lines: stderr is not a terminal), SIGKILLs it
# after KILL seconds, runs the same command again, and checks that the resumed run
#   - reconciles (every row read is accounted for),
#   - redid no signed work: every version committed before the kill is `unchanged` now,
#   - left no duplicates and no gaps: the registry holds exactly the versions an uninterrupted
#     run would (one per valid generated row that is not refused at decide time),
#   - passes `elicence store check`, `elicence audit verify` and `elicence log verify`.
# Prints the measurements (wall, rate, peak RSS of both runs, stage times) as Markdown.
# Usage: scripts/bench-kill-resume.sh ROWS --kill-after SECONDS [--jobs N] [--formats F]
#                                     [--segments] [--keep DIR]
# (--formats defaults to the pipeline's: PDF, XML and OFD, ≈ 82 KB a licence on disk; a
# 1,000,000-row run with `--formats pdf,xml` needs ≈ 35 GB.)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-common.sh

rows="${1:?usage: scripts/bench-kill-resume.sh ROWS --kill-after SECONDS [--jobs N] [--formats F] [--segments] [--keep DIR]}"
shift
kill_after=""
jobs=""
keep=""
extra=()
pipeline=pipelines/food-business-permit.toml
while [ $# -gt 0 ]; do
  case "$1" in
    --kill-after) kill_after="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --keep) keep="$2"; shift 2 ;;
    --formats) extra+=(--formats "$2"); shift 2 ;;
    --segments) extra+=(--segments); shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ -n "$kill_after" ] || { echo "--kill-after SECONDS is required" >&2; exit 2; }

setup_bench "$keep"
input="$work/export-$rows.csv"
data="$work/data"
fresh_data_dir "$data"
jobs_arg=()
[ -n "$jobs" ] && jobs_arg=(--jobs "$jobs")

[ -f "$input" ] || "$bin" gen "$pipeline" --rows "$rows" --format csv --defects 0.05 --seed 1 \
  --out "$input" 2>/dev/null
run=("$bin" run "$pipeline" --input "$input" --data "$data" --json --progress auto "${jobs_arg[@]}" "${extra[@]}")

# First run: killed with SIGKILL (no chance to clean up) after $kill_after seconds.
/usr/bin/time -f '%e %M' -o "$work/time1.txt" "${run[@]}" >"$work/run1.json" \
  2>"$work/progress1.log" &
timer=$!
sleep "$kill_after"
victim=$(pgrep -P "$timer" || true)
[ -n "$victim" ] || { echo "the run ended before ${kill_after}s: use more rows" >&2; exit 1; }
kill -KILL "$victim"
wait "$timer" || true
read -r wall1 rss1 < <(grep -E '^[0-9.]+ [0-9]+$' "$work/time1.txt")
committed=$(python3 - "$data/registry.sqlite" <<'EOF'
import sqlite3, sys
# Signed work committed: new versions, and revocations (a revocation marks a version).
print(sqlite3.connect(sys.argv[1]).execute(
    "SELECT count(*) + count(revoked_at) FROM versions").fetchone()[0])
EOF
)
echo "killed after ${wall1}s with $committed versions and revocations committed; last progress lines:" >&2
tail -n 3 "$work/progress1.log" >&2

# Second run: the same command.
/usr/bin/time -f '%e %M %U %S' -o "$work/time2.txt" "${run[@]}" >"$work/run2.json" \
  2>"$work/progress2.log"
read -r wall2 rss2 user2 sys2 <"$work/time2.txt"
"$bin" store check --data "$data" >"$work/store-check.txt" 2>&1
"$bin" audit verify --data "$data" >"$work/audit-verify.txt" 2>&1
"$bin" log verify --data "$data" >"$work/log-verify.txt" 2>&1

python3 - "$work" "$rows" "$committed" "$wall1" "$rss1" "$wall2" "$rss2" "$user2" "$sys2" \
  "$input.expected.csv" "$data/registry.sqlite" "$kill_after" <<'EOF'
import csv, json, sqlite3, sys
work, rows, committed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
wall1, rss1, wall2, rss2 = float(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7])
cpu2 = float(sys.argv[8]) + float(sys.argv[9])
report = json.load(open(f"{work}/run2.json"))
c = report["counts"]
assert c["read"] == rows and report["reconciled"], f"resumed run does not reconcile: {c}"
signed = c["issued"] + c["changed"] + c["revoked"]
db = sqlite3.connect(sys.argv[11])
versions, revocations = db.execute("SELECT count(*), count(revoked_at) FROM versions").fetchone()
dup = db.execute("SELECT count(*) FROM (SELECT licence_id, version FROM versions "
                 "GROUP BY 1, 2 HAVING count(*) > 1)").fetchone()[0]
expected = {"valid": 0, "rejected": 0, "duplicate": 0}
for r in csv.DictReader(open(sys.argv[10])):
    expected[r["outcome"]] += 1
# Nothing signed twice: what the killed run committed is unchanged now, the rest is new.
assert versions + revocations == committed + signed, \
    f"{versions} versions + {revocations} revocations != {committed} committed + {signed} signed"
assert c["unchanged"] >= committed, f"only {c['unchanged']} unchanged of {committed} committed"
assert dup == 0, f"{dup} duplicate versions"
# Nothing lost: every valid generated row is a version or a revocation, as in one clean run.
assert c["rejected"] == expected["rejected"] and c["duplicates"] == expected["duplicate"], (c, expected)
assert versions + revocations == expected["valid"], (versions, revocations, expected)
s = report["stages"]
print(f"| kill + resume | {rows:,} | SIGKILL after {float(sys.argv[12]):.0f} s "
      f"({committed:,} signed and committed, peak RSS {rss1 / 1024:.0f} MB) | resume {wall2:.1f} s: "
      f"{c['unchanged']:,} unchanged, {signed / wall2:,.0f} licences/s ({signed:,} signed), "
      f"peak RSS **{rss2 / 1024:.0f} MB**, CPU {cpu2:.1f} s; read {s['read_s']:.1f} s, "
      f"validate {s['validate_s']:.1f} s, decide {s['decide_s']:.1f} s, render+sign "
      f"{s['render_sign_s']:.1f} s, load {s['load_s']:.1f} s | registry: {versions:,} versions + "
      f"{revocations:,} revocations = the {expected['valid']:,} valid generated rows; 0 "
      f"duplicates; reconciled; store check, audit verify and log verify pass |")
print(f"overall: {(versions + revocations) / (wall1 + wall2):,.0f} licences/s over both runs "
      f"({wall1 + wall2:.0f} s)", file=sys.stderr)
EOF
echo "machine: $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ); $(git rev-parse --short HEAD); logs in $work" >&2
