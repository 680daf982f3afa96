# consul-template: writes the "billing" service's Consul leaf certificate and key where zonegate
# reads its identity, and renews them before they expire (zonegate reloads on change).
#   consul-template -config zonegate-leaf.hcl
consul {
  address = "127.0.0.1:8500"
}

template {
  contents    = "{{ with caLeaf \"billing\" }}{{ .CertPEM }}{{ end }}"
  destination = "/etc/zonegate/leaf/cert.pem"
  perms       = 0644
}

template {
  contents    = "{{ with caLeaf \"billing\" }}{{ .PrivateKeyPEM }}{{ end }}"
  destination = "/etc/zonegate/leaf/key.pem"
  perms       = 0600
}
