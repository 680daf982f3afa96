# syntax=docker/dockerfile:1
# Build stage: install every dependency, compile TypeScript, then keep production deps only.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY proto ./proto
RUN npm run build && npm prune --omit=dev

# Runtime stage: Node 24 LTS (CI runs the test suite on Node 24 as well as Node 20: .ci/run),
# non-root, the compiled code, its production deps and the protos.
FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY proto ./proto
COPY examples ./examples
USER node
# 50051: ext_authz gRPC (Envoy's grpc_service); 8181: ops HTTP (/healthz, /readyz, /metrics)
EXPOSE 50051 8181
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.ZONEGATE_OPS_PORT||8181)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# --max-semi-space-size=16: Node 24's default young generation grows to several times that and
# holds over 100 MB more at peak under load (docs/performance.md); 16 MB is Node 20's default and
# costs no measurable CPU here.
# --heap-growing-percent=100: the old generation grows to at most twice what survived the last
# full collection, where V8 picks up to 4x under a stream of new tokens; garbage, and the HTTP/2
# read buffers it still points to, is freed that much sooner (docs/performance.md).
# Workers of `serve --workers N` inherit both.
ENTRYPOINT ["node", "--max-semi-space-size=16", "--heap-growing-percent=100", "bin/zonegate.js"]
CMD ["serve"]
