#!/usr/bin/env bash
# Regenerates the example trust material in examples/certs/: two trust domains with their own
# root CAs, SVIDs for a few workloads, and a forged SVID (a zone-a CA signing a zone-b ID).
# Private keys are thrown away: the examples only need certificates. Needs openssl.
set -euo pipefail
cd "$(dirname "$0")/certs"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
days=7300

root() { # name trust-domain
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/$1.key" -out "$1.root.pem" \
    -days $days -subj "/O=zonegate example/CN=$2 root" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectAltName=URI:spiffe://$2" 2>/dev/null
}
svid() { # out-name ca-name spiffe-id
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/$1.key" -out "$tmp/$1.csr" \
    -subj "/O=zonegate example" 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=URI:%s\n' "$3" > "$tmp/$1.ext"
  openssl x509 -req -in "$tmp/$1.csr" -CA "$2.root.pem" -CAkey "$tmp/$2.key" -CAcreateserial -days $days \
    -extfile "$tmp/$1.ext" -out "$1.svid.pem" 2>/dev/null
}
root zone-a zone-a.example
root zone-b zone-b.example
svid frontend zone-a spiffe://zone-a.example/ns/shop/sa/frontend
svid billing zone-b spiffe://zone-b.example/ns/default/dc/dc1/svc/billing
svid forged zone-a spiffe://zone-b.example/ns/default/dc/dc1/svc/billing
rm -f ./*.srl
echo "wrote $(ls | tr '\n' ' ')"
