#!/usr/bin/env python3
"""An independent ext_authz client: Python grpcio (gRPC C-core, the core Envoy's google_grpc
client uses) with stubs compiled from the vendored protos at run time.

Usage: check_client.py --target HOST:PORT [--tls-ca CA --tls-cert CERT --tls-key KEY]
                       [--compression gzip|deflate] [--health SERVICE] [REQUEST.json ...]
Reads CheckRequests in proto3 JSON, sends each to Authorization/Check and prints one JSON line
per request: {"ok": true, "response": <CheckResponse JSON>} or {"ok": false, "code": NAME,
"details": ...}. With --health, prints the Health/Check status instead.
"""
import argparse
import importlib
import json
import os
import sys
import tempfile

import grpc
import grpc_tools
from grpc_tools import protoc
from google.protobuf import json_format

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.normpath(os.path.join(HERE, "..", "..", "proto"))
FILES = ["envoy/service/auth/v3/external_auth.proto", "grpc/health/v1/health.proto"]


def compile_stubs():
    out = tempfile.mkdtemp(prefix="zonegate-stubs-")
    wkt = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    # Compile the whole closure so every import has a module.
    closure = []
    for root, _dirs, files in os.walk(PROTO):
        for f in files:
            if f.endswith(".proto"):
                closure.append(os.path.relpath(os.path.join(root, f), PROTO))
    args = ["protoc", f"-I{PROTO}", f"-I{wkt}", f"--python_out={out}", f"--grpc_python_out={out}"] + sorted(closure)
    if protoc.main(args) != 0:
        sys.exit("protoc failed")
    for dirpath, _dirs, _files in os.walk(out):
        init = os.path.join(dirpath, "__init__.py")
        if dirpath != out and not os.path.exists(init):
            open(init, "w").close()
    sys.path.insert(0, out)
    # google/ and grpc/ are also installed packages (protobuf, grpcio): extend them, don't shadow.
    import google
    for name, pkg in (("google", google), ("grpc", grpc)):
        os.remove(os.path.join(out, name, "__init__.py"))
        pkg.__path__.append(os.path.join(out, name))


def channel(args):
    if args.tls_ca:
        read = lambda p: open(p, "rb").read() if p else None
        creds = grpc.ssl_channel_credentials(read(args.tls_ca), read(args.tls_key), read(args.tls_cert))
        opts = [("grpc.ssl_target_name_override", args.tls_name)] if args.tls_name else []
        return grpc.secure_channel(args.target, creds, options=opts)
    return grpc.insecure_channel(args.target)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--target", required=True)
    p.add_argument("--tls-ca")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--tls-name")
    p.add_argument("--health")
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--compression", choices=["gzip", "deflate"])
    p.add_argument("requests", nargs="*")
    args = p.parse_args()
    compile_stubs()
    ext = importlib.import_module("envoy.service.auth.v3.external_auth_pb2")
    ext_grpc = importlib.import_module("envoy.service.auth.v3.external_auth_pb2_grpc")
    ch = channel(args)
    if args.health is not None:
        h = importlib.import_module("grpc.health.v1.health_pb2")
        h_grpc = importlib.import_module("grpc.health.v1.health_pb2_grpc")
        try:
            r = h_grpc.HealthStub(ch).Check(h.HealthCheckRequest(service=args.health), timeout=args.timeout)
            print(json.dumps({"ok": True, "status": h.HealthCheckResponse.ServingStatus.Name(r.status)}))
        except grpc.RpcError as e:
            print(json.dumps({"ok": False, "code": e.code().name, "details": e.details()}))
        return
    stub = ext_grpc.AuthorizationStub(ch)
    compression = {"gzip": grpc.Compression.Gzip, "deflate": grpc.Compression.Deflate}.get(args.compression, grpc.Compression.NoCompression)
    for path in args.requests:
        req = ext.CheckRequest()
        with open(path) as f:
            json_format.Parse(f.read(), req)
        try:
            resp = stub.Check(req, timeout=args.timeout, compression=compression)
            print(json.dumps({"ok": True, "response": json.loads(json_format.MessageToJson(resp))}), flush=True)
        except grpc.RpcError as e:
            print(json.dumps({"ok": False, "code": e.code().name, "details": e.details()}), flush=True)


if __name__ == "__main__":
    main()
