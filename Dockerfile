# syntax=docker/dockerfile:1
# kvmesh server image: one node of any topology in configs/ (docs/deploy.md).
#
#   docker build -t kvmesh .
#   docker run -p 13801:13800 --net=kv_subnet --ip=10.10.0.4 \
#     -e ADDRESS=10.10.0.4:13800 -e VIEW=10.10.0.4:13800,10.10.0.5:13800 kvmesh
#   docker run -e KVMESH_CONFIG=configs/ring-local.json -e KVMESH_NODE_ID=n1 \
#     -e KVMESH_NODE_ADDRESS=10.10.0.4:7700 kvmesh --join 10.10.0.4:7700
ARG NODE_IMAGE=node:20-bookworm-slim

# Compiles every workspace with the dev dependencies (TypeScript, lerna).
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json lerna.json tsconfig.base.json ./
COPY packages/core/package.json packages/core/
COPY packages/plugins/package.json packages/plugins/
COPY packages/client/package.json packages/client/
COPY packages/server/package.json packages/server/
RUN npm ci --no-audit --no-fund
COPY packages packages
RUN npm run build

# The production dependencies alone, installed from the same lockfile.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/core/package.json packages/core/
COPY packages/plugins/package.json packages/plugins/
COPY packages/client/package.json packages/client/
COPY packages/server/package.json packages/server/
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
RUN groupadd --system --gid 10001 kvmesh \
 && useradd --system --uid 10001 --gid kvmesh --home-dir /home/kvmesh --create-home --shell /usr/sbin/nologin kvmesh \
 && mkdir -p /var/lib/kvmesh /etc/kvmesh \
 && chown kvmesh:kvmesh /var/lib/kvmesh /etc/kvmesh
COPY --from=deps /app ./
# What each package publishes ("files"): compiled sources and .proto files, no tests.
COPY --from=build /src/packages/core/dist/src packages/core/dist/src
COPY --from=build /src/packages/core/proto packages/core/proto
COPY --from=build /src/packages/plugins/dist/src packages/plugins/dist/src
COPY --from=build /src/packages/plugins/proto packages/plugins/proto
COPY --from=build /src/packages/client/dist/src packages/client/dist/src
COPY --from=build /src/packages/server/dist/src packages/server/dist/src
COPY --from=build /src/packages/server/bin packages/server/bin
COPY configs configs
COPY deploy/docker deploy/docker
# A secret of this build, so that containers of one image seal their frames
# with the same one when given none (the CSE138 commands give only ADDRESS and
# VIEW). Whoever holds the image holds it: give a cluster its own secret with
# KVMESH_CLUSTER_SECRET or KVMESH_CLUSTER_SECRET_FILE (docs/security.md).
RUN node -e "process.stdout.write(require('node:crypto').randomBytes(32).toString('base64url') + '\n')" \
      > /etc/kvmesh/image.secret \
 && chown kvmesh:kvmesh /etc/kvmesh/image.secret \
 && chmod 400 /etc/kvmesh/image.secret
USER kvmesh
# node.dataDir is --data-dir "$KVMESH_DATA_DIR" (entrypoint.sh): lmdb, the
# movement plan and the data directory lock live on the volume.
VOLUME ["/var/lib/kvmesh"]
ENV KVMESH_CONFIG=configs/cse138.json \
    KVMESH_DATA_DIR=/var/lib/kvmesh \
    KVMESH_CLUSTER_SECRET_FILE=/etc/kvmesh/image.secret
# The CSE138 port (its seed's), then the port of the other configs' nodes.
EXPOSE 13800 7700
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "/app/deploy/docker/healthcheck.mjs"]
ENTRYPOINT ["/app/deploy/docker/entrypoint.sh"]
