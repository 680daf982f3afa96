#!/usr/bin/env bash
# Generates the trust material of the two-zone setup (docker-compose.yaml) into DIR (default:
# ./certs beside this script). Two trust domains with different root CAs:
#   zone-a.example  workload spiffe://zone-a.example/ns/shop/sa/frontend
#   zone-b.example  workload spiffe://zone-b.example/ns/default/dc/dc1/svc/billing
# Layout (each zone directory is mounted into that zone's Envoy and zonegate only):
#   DIR/zone-a/bundle.pem            zone A's own bundle (its root CA); zonegate-a serves it
#   DIR/zone-a/svid.pem, svid.key    zone A's workload X509-SVID: Envoy-to-Envoy mTLS, and the
#                                    key zonegate-a signs common identities with
#   DIR/zone-a/peer-bootstrap.pem    zone B's root: bootstraps zonegate-a's https_spiffe fetch of
#                                    zone B's bundle, and validates zone B's Envoy
#   DIR/zone-b/…                     the mirror image
#   DIR/clients/forged.{pem,key}     zone A's CA signing a zone B SPIFFE ID (must be refused)
#   DIR/clients/next-root.pem        a second zone A root, for the rotation exercise, and
#   DIR/clients/next-frontend.{pem,key}  the frontend's SVID issued by it
#   DIR/ca/                          the CA keys (never mounted anywhere)
# Keys are readable by every user (0644) because the containers read them under their own
# uids (Envoy 101, node 1000): this material is for the demo, never for production. Needs
# OpenSSL 1.1.1 or later (-addext).
set -euo pipefail
dir=${1:-"$(dirname "$0")/certs"}
mkdir -p "$dir"/{zone-a,zone-b,clients,ca}
dir=$(cd "$dir" && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
days=${CERT_DAYS:-365}

root() { # name trust-domain
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/ca/$1.key" \
    -out "$dir/ca/$1.pem" -days "$days" -subj "/O=zonegate demo/CN=$2 $1" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectAltName=URI:spiffe://$2" 2>/dev/null
}
svid() { # out-base ca-name spiffe-id
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$tmp/leaf.csr" \
    -subj "/O=zonegate demo" 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=URI:%s\n' "$3" > "$tmp/leaf.ext"
  openssl x509 -req -in "$tmp/leaf.csr" -CA "$dir/ca/$2.pem" -CAkey "$dir/ca/$2.key" -CAcreateserial \
    -CAserial "$tmp/serial" -days "$days" -extfile "$tmp/leaf.ext" -out "$1.pem" 2>/dev/null
  chmod 0644 "$1.key"
}

root zone-a-root zone-a.example
root zone-a-next zone-a.example
root zone-b-root zone-b.example

cp "$dir/ca/zone-a-root.pem" "$dir/zone-a/bundle.pem"
cp "$dir/ca/zone-b-root.pem" "$dir/zone-b/bundle.pem"
cp "$dir/ca/zone-b-root.pem" "$dir/zone-a/peer-bootstrap.pem"
cp "$dir/ca/zone-a-root.pem" "$dir/zone-b/peer-bootstrap.pem"
svid "$dir/zone-a/svid" zone-a-root spiffe://zone-a.example/ns/shop/sa/frontend
svid "$dir/zone-b/svid" zone-b-root spiffe://zone-b.example/ns/default/dc/dc1/svc/billing
svid "$dir/clients/forged" zone-a-root spiffe://zone-b.example/ns/default/dc/dc1/svc/billing
svid "$dir/clients/next-frontend" zone-a-next spiffe://zone-a.example/ns/shop/sa/frontend
cp "$dir/ca/zone-a-next.pem" "$dir/clients/next-root.pem"
chmod 0700 "$dir/ca"
echo "wrote the two-zone trust material to $dir"
