# Beaver. The two commands: `make run` and `make test`.
GO      ?= go
GOBIN   := $(shell $(GO) env GOPATH)/bin
export PATH := $(GOBIN):$(PATH)
TEMPORAL_CLI := github.com/temporalio/cli/cmd/temporal@v1.5.1
WORKFLOWCHECK := go.temporal.io/sdk/contrib/tools/workflowcheck@v0.6.0
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
ERRCHECK := github.com/kisielk/errcheck@v1.30.0
# The packages where a data race would cost money: run under the race detector too.
RACE_PKGS := ./internal/billing/ ./internal/gateway/ ./internal/ratelimit/

.PHONY: run build test vet fmt-check lint go-test race-test web-test sdk-test sdk-deps workflowcheck temporal-cli web clean bench

## run: build everything missing and start `beaver dev` on the embedded defaults
run: temporal-cli web build
	./bin/beaver dev

# nomsgpack leaves gin's MessagePack codec out: Beaver speaks JSON only, and
# the binary (whose pages are most of an idle process's memory) is 9 MB smaller.
BUILD_TAGS := nomsgpack

build:
	$(GO) build -tags $(BUILD_TAGS) -o bin/beaver ./cmd/beaver

## temporal-cli: install the Temporal CLI once (the first build takes several minutes)
temporal-cli:
	@command -v temporal >/dev/null 2>&1 || { echo "Installing the Temporal CLI (first time: several minutes)..."; \
		cd "$$(mktemp -d)" && GOFLAGS=-mod=mod $(GO) install $(TEMPORAL_CLI); }

## web: build the dashboard when Node.js is present (the API never needs it)
web:
	@if [ -f web/package.json ] && command -v npm >/dev/null 2>&1 && node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=19)?0:1)'; then \
		cd web && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run build; \
	else echo "!!! Node.js >= 20.19 not found: the dashboard is not built (the API works without it)"; fi

## test: everything (vet, gofmt, staticcheck, errcheck, unit, race, HTTP, PostgreSQL, Redis, Temporal, Stripe, browser)
test: web vet fmt-check lint workflowcheck web-test go-test race-test sdk-test

## workflowcheck: Temporal's static check that workflow code is deterministic
workflowcheck:
	@command -v workflowcheck >/dev/null 2>&1 || { cd "$$(mktemp -d)" && GOFLAGS=-mod=mod $(GO) install $(WORKFLOWCHECK); }
	workflowcheck ./...

## web-test: the dashboard's unit tests (money formatting, SSE reader, refresh logic)
web-test:
	@if [ -d web/node_modules ]; then cd web && npm test --silent; \
	else echo "!!! SKIPPING web unit tests: Node.js dependencies are not installed"; fi

vet:
	$(GO) vet ./...

## lint: staticcheck, and errcheck outside tests (.errcheck-exclude lists the errors nobody can act on)
lint:
	@command -v staticcheck >/dev/null 2>&1 || { cd "$$(mktemp -d)" && GOFLAGS=-mod=mod $(GO) install $(STATICCHECK); }
	@command -v errcheck >/dev/null 2>&1 || { cd "$$(mktemp -d)" && GOFLAGS=-mod=mod $(GO) install $(ERRCHECK); }
	staticcheck ./...
	errcheck -ignoretests -exclude .errcheck-exclude ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

go-test:
	$(GO) test -count=1 -timeout 15m ./...

## sdk-test: the official openai-go and google.golang.org/genai Go clients and the `openai`, `@anthropic-ai/sdk` and `@google/genai` npm clients against a real `beaver api` (e2e/sdk, its own
## Go module, so `go test ./...` above does not run it). Needs Node.js >= 18; npm ci runs here, not in the test.
SDK_NODE_DIR := e2e/sdk/node
sdk-test: sdk-deps
	cd e2e/sdk && $(GO) vet . && $(GO) test -count=1 -timeout 5m .

## sdk-deps: check Node.js, and npm ci in e2e/sdk/node when node_modules is missing or older than the lock
sdk-deps:
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || \
		{ echo "!!! sdk-test needs Node.js >= 18 and npm (not found): install them (.ci/run does)"; exit 1; }
	@node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' || \
		{ echo "!!! sdk-test needs Node.js >= 18, found $$(node --version)"; exit 1; }
	@[ $(SDK_NODE_DIR)/node_modules/.package-lock.json -nt $(SDK_NODE_DIR)/package-lock.json ] || \
		{ cd $(SDK_NODE_DIR) && npm ci --no-audit --no-fund; }

## race-test: the money paths, and streams detached from their handlers, under the race detector
race-test:
	$(GO) test -count=1 -race -timeout 10m $(RACE_PKGS)
	$(GO) test -count=1 -race -timeout 10m -run 'TestDetached|TestStreamDetachedMidway|TestClientDisconnect|TestReturned' ./api

bench:
	$(GO) run ./bench

clean:
	rm -rf bin
