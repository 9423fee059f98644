# Shared by the benchmark scripts: source it after `cd` to the repository.

# Empties the data folder "$1" for a fresh registry.
fresh_data_dir() {
  local data="$1"
  [ -e "$data" ] || return 0
  # This machine's ext4 has no journal, so a new inode skips every inode freed in the last
  # 60 s (300 s while its table block is dirty), checking each: deleting a store of many
  # thousand files right before a run made the kernel's inode allocation 16 % of its CPU.
  # No real backfill runs after such a deletion (stored files are never deleted), so wait.
  rm -rf "$data"
  sync
  echo "waiting 65 s after deleting the previous store (see scripts/bench-common.sh)" >&2
  sleep 65
}

# Builds the release binary and sets $bin; sets $work to the folder "$1" (kept) or to a new
# temporary folder removed on exit.
setup_bench() {
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/elicence-target}"
  # ELICENCE_BIN: a release binary already built (e.g. with `--bins --examples`, whose feature
  # set differs from `--bin elicence` alone, so building here would rebuild every dependency).
  if [ -n "${ELICENCE_BIN:-}" ]; then
    bin="$ELICENCE_BIN"
  else
    cargo build --release --locked --bin elicence >&2
    bin="$CARGO_TARGET_DIR/release/elicence"
  fi
  work="${1:-$(mktemp -d /var/tmp/elicence-bench.XXXXXX)}"
  mkdir -p "$work"
  [ -n "$1" ] || trap 'rm -rf "$work"' EXIT
}
