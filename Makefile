# Sajet Domains. `make run` starts the whole control plane locally; `make test` runs every test.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# PIE: the Debian hardening lintian checks for; Go links it internally on amd64.
BUILDFLAGS := -trimpath -buildmode=pie
PKGS    := ./...

.PHONY: all build run test lint bench clean deb test-packaging test-system ui ui-check screenshots

all: build

build:
	$(GO) build $(BUILDFLAGS) -ldflags '$(LDFLAGS)' -o bin/sajet-controlplane ./controlplane/cmd/sajet-controlplane
	$(GO) build $(BUILDFLAGS) -ldflags '$(LDFLAGS)' -o bin/sajet-agent ./agent/cmd/sajet-agent

# Debian packages for both binaries (nfpm, run as a tool; configs in packaging/).
deb: build
	VERSION='$(VERSION)' ./packaging/build-deb.sh

# lintian, systemd-analyze verify, the polkit rule, and an install/upgrade/remove/purge cycle.
test-packaging:
	VERSION='$(VERSION)' ./packaging/test-packaging.sh

# The agent's package on a booted Debian (systemd-nspawn): real systemd, polkit and cloudflared.
test-system:
	VERSION='$(VERSION)' ./packaging/test-system.sh

# The main job: a private PostgreSQL under ./.dev, migrations, an admin token, the API.
run: build
	./bin/sajet-controlplane dev

# The web UI (controlplane/web): its built files, the OpenAPI copy and the typed client are
# committed, so `go build` and `make run` need no node. `make ui` rebuilds all three from source:
# npm ci, openapi.json from the live API, the client generated from it, svelte-check, vite build.
UI_DIR := controlplane/web/ui
ui:
	@node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20||(a===20&&b<19)) { console.error("make ui needs node >= 20.19 (vite 8), this is "+process.version); process.exit(1) }'
	cd $(UI_DIR) && npm ci --no-audit --no-fund --loglevel=error
	$(GO) test ./controlplane/web -run '^TestCommittedOpenAPIIsTheLiveOne$$' -count=1 -update
	cd $(UI_DIR) && npm run --silent gen:api && npm run --silent check && npm run --silent build

# make test's proof that what is committed is what the sources build (the build is byte-reproducible).
UI_OUTPUTS := controlplane/web/dist controlplane/web/openapi.json $(UI_DIR)/src/lib/api/schema.d.ts $(UI_DIR)/package-lock.json
ui-check: ui
	@changed=$$(git status --porcelain -- $(UI_OUTPUTS)); \
	if [ -n "$$changed" ]; then echo "the committed web UI differs from what its sources build: run make ui and commit"; echo "$$changed"; exit 1; fi

# The README's screenshots of the Domains page and the DNS wizard (docs/screenshots/), taken by
# chromedp from the real control plane.
screenshots:
	SAJET_SCREENSHOTS=docs/screenshots $(GO) test ./controlplane/web -run '^TestScreenshots$$' -count=1 -v

# Go tests (the browser tests included), then the packaging checks (lintian, unit verification,
# install/upgrade/purge cycle), then the agent's package on a booted systemd (test-system).
test: lint ui-check
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(MAKE) test-packaging
	$(MAKE) test-system

# staticcheck at a pinned version, run as a tool (go run): not a dependency of the module.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

# Benchmarks print their figures (ns/op and custom metrics such as req/s, p99-ms).
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m $(PKGS)

clean:
	rm -rf bin dist
