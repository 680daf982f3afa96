# consul-template: writes the "zone-a-edge" service's Consul leaf certificate and key where the
# edge's zonegate reads its identity and the edge Envoy its server certificate (through
# edge-sds-leaf.yaml), and renews them before they expire. consul-template replaces each file
# by a rename, which both zonegate and Envoy's SDS file watch pick up.
#   consul-template -config edge-leaf.hcl
consul {
  address = "127.0.0.1:8500"
}

template {
  contents    = "{{ with caLeaf \"zone-a-edge\" }}{{ .CertPEM }}{{ end }}"
  destination = "/etc/zonegate/edge/leaf/cert.pem"
  perms       = 0644
}

template {
  contents    = "{{ with caLeaf \"zone-a-edge\" }}{{ .PrivateKeyPEM }}{{ end }}"
  destination = "/etc/zonegate/edge/leaf/key.pem"
  perms       = 0600
}
