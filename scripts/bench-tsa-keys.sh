#!/usr/bin/env bash
# An EC P-256 TSA key and certificate for the bench TSA (`examples/bench_tsa.rs --ec`):
# DIR/tsa-ec.key and DIR/tsa-ec.pem, issued by the test CA in DIR (ca.pem, ca.key, as
# `tests/tsa/start.sh DIR PORT` makes it) with the test TSA certificate's extensions
# (extendedKeyUsage critical timeStamping; the CRL distribution point of DIR/crl-dp.txt, if any).
# Without DIR/ca.key, a test CA is made first (ca.pem, ca.key; RSA-2048, as start.sh's).
# Why EC: a benchmark's TSA runs on the machine being measured, and an ECDSA P-256 signature
# costs a fraction of RSA-2048's, which a real TSA would spend on its own machine.
# Usage: scripts/bench-tsa-keys.sh DIR      Needs openssl.
set -euo pipefail
DIR="${1:?usage: scripts/bench-tsa-keys.sh DIR}"
mkdir -p "$DIR"
cd "$DIR"
if [ ! -f ca.key ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
    -subj "/CN=Test TSA Root/O=elicence tests/C=CN" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" 2>/dev/null
fi
{
  echo "[ tsa_ext ]"
  echo "basicConstraints = critical, CA:FALSE"
  echo "keyUsage = critical, digitalSignature"
  echo "extendedKeyUsage = critical, timeStamping"
  echo "subjectKeyIdentifier = hash"
  echo "authorityKeyIdentifier = keyid"
  [ -s crl-dp.txt ] && echo "crlDistributionPoints = URI:$(cat crl-dp.txt)"
} >tsa-ec.cnf
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out tsa-ec.key 2>/dev/null
openssl req -new -key tsa-ec.key -out tsa-ec.csr -subj "/CN=Test TSA EC/O=elicence tests/C=CN"
# A random serial: ca.srl would collide with the serials start.sh's `-CAcreateserial` issued.
openssl x509 -req -in tsa-ec.csr -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
  -out tsa-ec.pem -days 3650 -extfile tsa-ec.cnf -extensions tsa_ext 2>/dev/null
rm -f tsa-ec.csr tsa-ec.cnf
