# meshlens container image: one image for every target (`docker run <image> ingest|aggregator|tracer|provisioner|all`).
#
#   docker build -t meshlens .                             # default: no embedded ClickHouse (set MESHLENS_CLICKHOUSE_URL)
#   docker build -t meshlens:all-in-one --target all-in-one .   # with chDB, for `meshlens all` on its own
#
# The code runs as TypeScript through tsx (bin/meshlens.js), so there is no build step: the stages only install
# production dependencies. Base image pinned by exact tag; bump it deliberately (Node.js LTS line, Debian slim).

# Production dependencies without the optional ones: chdb (embedded ClickHouse) and its ~540 MB native library stay out.
# --omit=optional also drops esbuild's platform package, which tsx needs at run time; esbuild's own install script then
# fetches that binary from the npm registry, and the check after `npm ci` fails the build if it did not.
FROM node:24.20.0-trixie-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund \
 && npm cache clean --force \
 && node -e "require('esbuild').transformSync('const a: number = 1', { loader: 'ts' })"

# Production dependencies with chdb, for the all-in-one.
FROM node:24.20.0-trixie-slim AS deps-all-in-one
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force \
 && node -e "require('chdb/connection')"

# What every target runs: the sources (read-only, owned by root) and a data directory owned by the non-root user.
FROM node:24.20.0-trixie-slim AS app
LABEL org.opencontainers.image.title="meshlens" \
      org.opencontainers.image.description="Observability aggregator for service-mesh telemetry" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production \
    MESHLENS_LISTEN_HOST=0.0.0.0 \
    MESHLENS_DATA_DIR=/var/lib/meshlens
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY bin ./bin
COPY lib ./lib
COPY services ./services
COPY simulator ./simulator
COPY clickhouse ./clickhouse
COPY examples ./examples
# The base image's unprivileged `node` user (uid 1000) owns only the data directory: the all-in-one's embedded
# ClickHouse and dead letters (mount a volume there). The split targets, on Kafka and a ClickHouse server, write nothing.
RUN mkdir -p /var/lib/meshlens \
 && chown node:node /var/lib/meshlens
USER node
# HTTP (receivers, query API, /metrics, health), OTLP gRPC, OTLP HTTP, Zipkin; each MESHLENS_*_PORT moves one.
EXPOSE 8080 4317 4318 9411
# No curl or wget in the slim image: node itself asks /readyz on the configured port. Six misses 10 s apart (a minute)
# cover a start that waits for Kafka or ClickHouse (no --start-period: dockerfilelint 1.8 misreads the option's dash).
HEALTHCHECK --interval=10s --timeout=5s --retries=6 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.MESHLENS_HTTP_PORT || 8080) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form, no shell and no npm in between: SIGTERM reaches meshlens, which drains within MESHLENS_SHUTDOWN_TIMEOUT.
ENTRYPOINT ["node", "bin/meshlens.js"]
CMD ["all"]

# `docker build --target all-in-one`: the same, with embedded ClickHouse (chDB) for `meshlens all` without a server.
FROM app AS all-in-one
COPY --from=deps-all-in-one /app/node_modules ./node_modules

# The default image (last stage): without chDB. `all` then needs MESHLENS_CLICKHOUSE_URL, and says so in one line.
FROM app AS default
COPY --from=deps /app/node_modules ./node_modules
