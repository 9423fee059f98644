#!/bin/sh
# Fills fuzz/corpus/<target>/ with seed inputs from the repository's fixtures (see
# docs/fuzzing.md). Run from the repository root after `cargo build --release`:
#
#   sh fuzz/seed.sh
#
# fuzz_csv and fuzz_workbook read a selector byte before the file (delimiter/encoding/header
# mode; workbook format), so each seed gets the byte that makes the target read it as what it
# is. fuzz_verify reads the file as is; its seeds are licences signed with the development keys
# in fixtures/keys (rendered into a scratch folder with the release binary).
set -eu
corpus=fuzz/corpus
bin=${ELICENCE_BIN:-${CARGO_TARGET_DIR:-target}/release/elicence}
mkdir -p "$corpus/fuzz_csv" "$corpus/fuzz_workbook" "$corpus/fuzz_verify" "$corpus/fuzz_seal"

# prefix BYTE_OCTAL FILE OUT: writes the selector byte, then the file.
prefix() { { printf "\\$1"; cat "$2"; } > "$3"; }

for f in fixtures/hostile/*.csv fixtures/read/*.csv fixtures/*/export*.csv; do
    [ -f "$f" ] || continue
    name=$(echo "$f" | tr / _)
    prefix 000 "$f" "$corpus/fuzz_csv/$name"          # comma, auto encoding, header search
    prefix 040 "$f" "$corpus/fuzz_csv/expected-$name" # comma, auto, expected headers
done
# Selector % 3: 0 xlsx, 1 xls, 2 ods.
for f in fixtures/hostile/*.xlsx fixtures/read/*.xlsx fixtures/*/export*.xlsx; do
    if [ -f "$f" ]; then prefix 000 "$f" "$corpus/fuzz_workbook/$(echo "$f" | tr / _)"; fi
done
for f in fixtures/hostile/*.xls fixtures/read/*.xls fixtures/*/export*.xls; do
    if [ -f "$f" ]; then prefix 001 "$f" "$corpus/fuzz_workbook/$(echo "$f" | tr / _)"; fi
done
for f in fixtures/read/*.ods fixtures/*/export*.ods; do
    if [ -f "$f" ]; then prefix 002 "$f" "$corpus/fuzz_workbook/$(echo "$f" | tr / _)"; fi
done

# fuzz_seal: selector 0 reads a seal file (the key set's seals).
for f in fixtures/keys/seals/*.esl; do
    if [ -f "$f" ]; then prefix 000 "$f" "$corpus/fuzz_seal/$(basename "$f")"; fi
done

if [ -x "$bin" ]; then
    scratch=$(mktemp -d)
    for pipeline in food-business-permit business-licence special-operations-certificate; do
        "$bin" render "pipelines/$pipeline.toml" --input "fixtures/$pipeline/export-utf8.csv" \
            --keys fixtures/keys --formats pdf,xml,ofd --out "$scratch/$pipeline" > /dev/null 2>&1 || true
    done
    # A few of each kind are enough; libFuzzer mutates from there.
    find "$scratch" \( -name '*.pdf' -o -name '*.xml' -o -name '*.ofd' \) | sort | head -n 18 |
        while read -r f; do cp "$f" "$corpus/fuzz_verify/$(basename "$f")"; done
    # fuzz_seal, selector 1: the SES_Signature of a few sealed OFDs.
    find "$scratch" -name '*.ofd' | sort | head -n 3 | while read -r f; do
        python3 -c 'import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
name = next(n for n in z.namelist() if n.endswith("SignedValue.dat"))
sys.stdout.buffer.write(b"\x01" + z.read(name))' "$f" > "$corpus/fuzz_seal/$(basename "$f").sig"
    done
    rm -rf "$scratch"
else
    echo "no release binary at $bin: fuzz_verify gets no signed seeds" >&2
fi
for t in fuzz_csv fuzz_workbook fuzz_verify fuzz_seal; do
    echo "$t: $(ls "$corpus/$t" | wc -l) seeds"
done
