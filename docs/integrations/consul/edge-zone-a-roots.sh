#!/usr/bin/env bash
# Writes the X.509 roots of zone A's current bundle as PEM, for the edge Envoy's SDS secret
# "zone_a_roots" (edge-sds-zone-a-roots.yaml). Fetches zone A's SPIFFE bundle endpoint with
# `zonegate bundle fetch` (https_spiffe, the same checks as zonegate's own federation) and
# replaces OUT by a rename only when the roots changed, so Envoy's file watch reloads them
# without a restart. Run it at install time and then periodically (a cron entry or systemd
# timer every few minutes): a root zone A adds is accepted by Envoy from the next run on.
#
#   edge-zone-a-roots.sh [OUT]      (default /etc/zonegate/edge/zone-a/roots.pem)
#
# Like zonegate's https_spiffe source, the first fetch is authenticated with the root exchanged
# out of band (ZONE_A_BOOTSTRAP), every later one with the roots written last time, so a
# rotation of zone A's CA is followed. Environment (defaults as in edge-zonegate.yaml):
#   ZONE_A_BUNDLE_URL    https://trust.zone-a.example:8443/
#   ZONE_A_ENDPOINT_ID   spiffe://zone-a.example/ns/shop/sa/frontend
#   ZONE_A_BOOTSTRAP     /etc/zonegate/edge/zone-a-bootstrap.pem
#   ZONEGATE             the zonegate command (default: npx zonegate, from a checkout)
# Needs jq. Exit 0: OUT is current; otherwise OUT is left as it was.
set -euo pipefail
out=${1:-/etc/zonegate/edge/zone-a/roots.pem}
url=${ZONE_A_BUNDLE_URL:-https://trust.zone-a.example:8443/}
id=${ZONE_A_ENDPOINT_ID:-spiffe://zone-a.example/ns/shop/sa/frontend}
bootstrap=${ZONE_A_BOOTSTRAP:-/etc/zonegate/edge/zone-a-bootstrap.pem}
[ -s "$out" ] && bootstrap=$out
read -r -a zonegate <<< "${ZONEGATE:-npx zonegate}"

dir=$(dirname "$out")
mkdir -p "$dir"
tmp=$(mktemp "$dir/.roots.XXXXXX")
trap 'rm -f "$tmp"' EXIT

bundle=$("${zonegate[@]}" bundle fetch "$url" --trust-domain zone-a.example --profile https_spiffe \
  --endpoint-spiffe-id "$id" --bootstrap "$bootstrap") || { echo "edge-zone-a-roots: fetch failed: $bundle" >&2; exit 1; }
jq -r '.keys[] | select(.use == "x509-svid") | .x5c[0]' <<< "$bundle" | while read -r der; do
  printf -- '-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n' "$(fold -w 64 <<< "$der")"
done > "$tmp"
if ! grep -q 'BEGIN CERTIFICATE' "$tmp"; then
  echo "edge-zone-a-roots: zone A's bundle has no X.509 authorities; $out left as it was" >&2
  exit 1
fi
if [ -f "$out" ] && cmp -s "$tmp" "$out"; then exit 0; fi
chmod 0644 "$tmp"
mv -f "$tmp" "$out"
echo "edge-zone-a-roots: wrote $(grep -c 'BEGIN CERTIFICATE' "$out") root(s) of zone-a.example to $out"
