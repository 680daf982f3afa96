# The billing service registration with its sidecar, and a check on zonegate's readiness: while
# zonegate has no bundles yet, the instance is not healthy and receives no traffic.
#   consul services register billing-service.hcl
service {
  name = "billing"
  port = 8080

  connect {
    sidecar_service {}
  }

  check {
    id       = "zonegate-ready"
    name     = "zonegate ready"
    http     = "http://127.0.0.1:8181/readyz"
    interval = "5s"
    timeout  = "1s"
  }
}
