# syntax=docker/dockerfile:1
# Beaver: one image, one binary. `beaver api` (default command), `beaver
# worker`, `beaver migrate up|down|status`.
#
#   docker build -t beaver .
#   docker run --rm -p 8080:8080 -e BEAVER_DATABASE_URL=postgres://... beaver api

# ---- the dashboard (optional for the API; built here so the image has it) ----
FROM node:22-alpine AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

# ---- the binary (pure Go: the SQLite driver needs no cgo) ----
FROM golang:1.26-alpine AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod go mod download
COPY . .
COPY --from=web /src/web/dist/app ./web/dist/app
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -tags nomsgpack -ldflags="-s -w" -o /out/beaver ./cmd/beaver

# ---- runtime: small, non-root, with wget for health checks ----
FROM alpine:3.22
RUN apk add --no-cache ca-certificates tzdata \
 && adduser -D -H -u 10001 beaver \
 && mkdir -p /data && chown beaver /data
COPY --from=build /out/beaver /usr/local/bin/beaver
USER beaver
WORKDIR /data
ENV BEAVER_ADDR=0.0.0.0:8080 \
    BEAVER_DATA_DIR=/data \
    BEAVER_DATABASE_URL=sqlite:///data/beaver.db
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD wget -qO- http://127.0.0.1:8080/health >/dev/null || exit 1
ENTRYPOINT ["/usr/local/bin/beaver"]
CMD ["api"]
