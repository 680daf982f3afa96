#!/usr/bin/env bash
# Writes the trust material of two trust domains with different root CAs into DIR:
#   zone-a.example  workload spiffe://zone-a.example/ns/shop/sa/frontend
#   zone-b.example  workload spiffe://zone-b.example/ns/default/dc/dc1/svc/billing
# and a forged SVID: zone A's CA signing zone B's billing ID (zonegate must refuse it).
#
#   make-certs.sh [--flat] [--days N] DIR
#
# Default layout, for the two-zone setup of envoy/ (each zone directory is mounted into that
# zone's Envoy and zonegate only):
#   DIR/zone-a/bundle.pem            zone A's own bundle (its root CA); zonegate-a serves it
#   DIR/zone-a/svid.pem, svid.key    zone A's workload X509-SVID: Envoy-to-Envoy mTLS, and the
#                                    key zonegate-a signs common identities with
#   DIR/zone-a/peer-bootstrap.pem    zone B's root: bootstraps zonegate-a's https_spiffe fetch of
#                                    zone B's bundle, and validates zone B's Envoy
#   DIR/zone-b/…                     the mirror image
#   DIR/clients/forged.{pem,key}     the forged SVID
#   DIR/clients/next-root.pem        a second zone A root, for the rotation exercise, and
#   DIR/clients/next-frontend.{pem,key}  the frontend's SVID issued by it
#   DIR/ca/                          the CA keys (never mounted anywhere)
# Keys are readable by every user (0644) because the containers read them under their own
# uids (Envoy 101, node 1000): this material is for the demo, never for production.
#
# --flat: certificates only, no keys, the layout of examples/certs (what examples/zonegate.yaml
# and examples/make-requests.mjs read): DIR/zone-a.root.pem, zone-b.root.pem,
# frontend.svid.pem, billing.svid.pem, forged.svid.pem. The examples were made with
#   examples/make-certs.sh --flat --days 7300 examples/certs
#
# --days N: validity of every certificate (default 365). Needs OpenSSL 1.1.1 or later (-addext).
set -euo pipefail
usage() { echo "usage: $0 [--flat] [--days N] DIR" >&2; exit 2; }
flat=false
days=365
while [ $# -gt 0 ]; do
  case $1 in
    --flat) flat=true; shift ;;
    --days) [ $# -ge 2 ] && [[ $2 =~ ^[1-9][0-9]*$ ]] || usage; days=$2; shift 2 ;;
    -*) usage ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || usage
mkdir -p "$1"
out=$(cd "$1" && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# the zone layout is always built; --flat copies its certificates out under their example names
dir=$tmp/material
mkdir -p "$dir"/{zone-a,zone-b,clients,ca}

root() { # name trust-domain common-name
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/ca/$1.key" \
    -out "$dir/ca/$1.pem" -days "$days" -subj "/O=zonegate example/CN=$3" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectAltName=URI:spiffe://$2" 2>/dev/null
}
svid() { # out-base ca-name spiffe-id
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$tmp/leaf.csr" \
    -subj "/O=zonegate example" 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=URI:%s\n' "$3" > "$tmp/leaf.ext"
  openssl x509 -req -in "$tmp/leaf.csr" -CA "$dir/ca/$2.pem" -CAkey "$dir/ca/$2.key" -CAcreateserial \
    -CAserial "$tmp/serial" -days "$days" -extfile "$tmp/leaf.ext" -out "$1.pem" 2>/dev/null
  chmod 0644 "$1.key"
}

root zone-a-root zone-a.example 'zone-a.example root'
root zone-a-next zone-a.example 'zone-a.example next root'
root zone-b-root zone-b.example 'zone-b.example root'
cp "$dir/ca/zone-a-root.pem" "$dir/zone-a/bundle.pem"
cp "$dir/ca/zone-b-root.pem" "$dir/zone-b/bundle.pem"
cp "$dir/ca/zone-b-root.pem" "$dir/zone-a/peer-bootstrap.pem"
cp "$dir/ca/zone-a-root.pem" "$dir/zone-b/peer-bootstrap.pem"
svid "$dir/zone-a/svid" zone-a-root spiffe://zone-a.example/ns/shop/sa/frontend
svid "$dir/zone-b/svid" zone-b-root spiffe://zone-b.example/ns/default/dc/dc1/svc/billing
svid "$dir/clients/forged" zone-a-root spiffe://zone-b.example/ns/default/dc/dc1/svc/billing
svid "$dir/clients/next-frontend" zone-a-next spiffe://zone-a.example/ns/shop/sa/frontend
cp "$dir/ca/zone-a-next.pem" "$dir/clients/next-root.pem"

if $flat; then
  cp "$dir/zone-a/bundle.pem" "$out/zone-a.root.pem"
  cp "$dir/zone-b/bundle.pem" "$out/zone-b.root.pem"
  cp "$dir/zone-a/svid.pem" "$out/frontend.svid.pem"
  cp "$dir/zone-b/svid.pem" "$out/billing.svid.pem"
  cp "$dir/clients/forged.pem" "$out/forged.svid.pem"
  echo "wrote the example certificates to $out"
else
  mkdir -p "$out"/{zone-a,zone-b,clients,ca}
  for d in zone-a zone-b clients ca; do cp -p "$dir/$d"/* "$out/$d/"; done
  chmod 0700 "$out/ca"
  echo "wrote the two-zone trust material to $out"
fi
