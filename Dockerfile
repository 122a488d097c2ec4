# syntax=docker/dockerfile:1
# Auditline image: the `auditline` CLI, which runs every consumer service
# (`auditline run <service>`) and the one-shot `auditline setup`.
# docker-compose.yml builds it; docs/docker.md describes the stack.
#
#   docker build -t auditline .
#   docker run --rm auditline --help

ARG NODE_IMAGE=node:20.19-bookworm-slim

# 1. Compile: all dependencies (TypeScript is a dev dependency), then tsc.
#    .dockerignore keeps test/, bench/, docs/ and local state out of the context.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would compile before the sources are copied.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
# As the package publishes it (package.json "files"): no TypeScript sources under infra/.
RUN npx tsc -p tsconfig.json && find infra -name '*.ts' -delete

# 2. Production dependencies only (all pure JavaScript: no install scripts needed).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# 3. Runtime: compiled code plus the assets it reads through core/paths.ts
#    assetPath(): package.json (version), schemas/avro (the event schema),
#    infra/ (ClickHouse migrations, retention.yaml, alert rules and channels,
#    the compose helpers in infra/docker/).
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/dist ./dist
COPY --from=build /src/schemas/avro ./schemas/avro
COPY --from=build /src/infra ./infra
# The official image's unprivileged user (uid 1000); nothing under /app is writable by it.
USER node
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["--help"]
