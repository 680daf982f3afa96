# The zone A edge as a Consul service: its sidecar gets an upstream to billing on
# 127.0.0.1:9191, where the edge Envoy (edge-envoy.yaml) sends what its zonegate allowed, and a
# check on the edge zonegate's readiness: until it holds both bundles, the edge is unhealthy.
#   consul services register edge-service.hcl
service {
  name = "zone-a-edge"
  port = 10443

  connect {
    sidecar_service {
      proxy {
        upstreams = [
          {
            destination_name = "billing"
            local_bind_port  = 9191
          }
        ]
      }
    }
  }

  check {
    id       = "zonegate-ready"
    name     = "edge zonegate ready"
    http     = "http://127.0.0.1:8181/readyz"
    interval = "5s"
    timeout  = "1s"
  }
}
