# Tether. `make run` shows it working; `make test` checks it. Both install
# what they need first (Debian packages, Go modules), so on a fresh Debian
# machine with Go, as root, each is the only command you need.

GO       ?= go
BIN      := bin
STATE    ?= .tether-dev
PROFILE  ?= cable_bloated
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X github.com/tetherwfh/tether/internal/version.Version=$(VERSION)
# The pure-Go binaries: everything but the tray builds with CGO_ENABLED=0.
PURE_CMDS := tether tetherd tether-gateway tether-bench tether-dev
# Debian packages the build and the tests need (see README).
DEB_PKGS := gcc libgl1-mesa-dev xorg-dev nftables iproute2 iperf3 dnsperf tcpdump xvfb iputils-ping git wireguard-tools

.PHONY: all deps build build-tray run test test-short test-long bench bench-dns lab lint cross clean

all: build

# deps installs the missing Debian packages, and only those, then fetches
# the Go modules. Running it twice does nothing the second time.
deps:
	@missing=""; for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "deps: missing Debian packages:$$missing (run as root, or install them)"; exit 1; fi; \
		echo "deps: installing$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else echo "deps: Debian packages present"; fi
	@$(GO) mod download
	@echo "deps: Go modules present"
	@# Stock wireguard-go, at the version go.mod pins, for the interop tests.
	@if [ ! -x $(BIN)/tools/wireguard ]; then \
		GOBIN=$(CURDIR)/$(BIN)/tools CGO_ENABLED=0 $(GO) install golang.zx2c4.com/wireguard@$$($(GO) list -m -f '{{.Version}}' golang.zx2c4.com/wireguard) && \
		echo "deps: stock wireguard-go installed in $(BIN)/tools"; \
	else echo "deps: stock wireguard-go present"; fi

build: deps
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ $(addprefix ./cmd/,$(PURE_CMDS))
	CGO_ENABLED=1 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/tether-tray

# run: the embedded default. A gateway and a daemon on loopback, state in
# $(STATE); Ctrl-C stops both.
run: build
	./$(BIN)/tether-dev --state $(STATE)

# test: every test with the race detector. As root the namespace lab runs
# and must not skip (TETHER_LAB_REQUIRED=1); otherwise lab tests skip and
# say why.
test: deps
	@if [ "$$(id -u)" = 0 ]; then export TETHER_LAB_REQUIRED=1; fi; \
	TETHER_WIREGUARD_GO=$(CURDIR)/$(BIN)/tools/wireguard $(GO) test -race -count=1 -timeout 30m ./...

test-short:
	$(GO) test -race -short ./...

# test-long: the lab tests that take minutes (ten on a fiber line with the
# line monitor, counting false suggestions); .ci/run runs them.
test-long: deps
	@if [ "$$(id -u)" = 0 ]; then export TETHER_LAB_REQUIRED=1; fi; \
	TETHER_LONG=1 $(GO) test -count=1 -timeout 30m -run 'TestLabFiberNoFalseSuggestion' -v ./client

# bench: the Go benchmarks (5 counts each, for benchstat), then, as root,
# the lab accuracy benchmark: each profile measured with iperf3 and ping and
# with tether diag in the same lab, as a table (bench-accuracy.md).
bench: deps
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./... | tee bench.out
	@if [ "$$(id -u)" = 0 ]; then \
		TETHER_BENCH_LAB=1 TETHER_BENCH_TABLE=$(CURDIR)/bench-accuracy.md $(GO) test -run '^$$' -bench LabAccuracy -benchtime 1x -timeout 20m ./netdiag/ | grep -v 'level=' ; \
	else echo "bench: the lab accuracy benchmark needs root; skipped"; fi

# bench-dns: our filtering resolver against CoreDNS (hosts + cache) and
# Unbound (local-zone), same 1M-entry list and query mix, dnsperf on this
# machine; writes bench-dns.md. Installs the contenders when missing.
COREDNS_VERSION := v1.15.0
bench-dns: build
	@command -v unbound >/dev/null || { echo "bench-dns: installing unbound"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends unbound >/dev/null; }
	@[ -x $(BIN)/tools/coredns ] || { echo "bench-dns: building CoreDNS $(COREDNS_VERSION) (a few minutes)"; GOBIN=$(CURDIR)/$(BIN)/tools CGO_ENABLED=0 $(GO) install github.com/coredns/coredns@$(COREDNS_VERSION); }
	./$(BIN)/tether-bench dns --coredns $(BIN)/tools/coredns --unbound $$(command -v unbound) --out bench-dns.md

# lab: bring up the namespace lab by hand. make lab PROFILE=dsl_bloated
lab: deps
	$(GO) run ./internal/cmd/tether-lab -profile $(PROFILE)

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) vet $(addprefix ./cmd/,$(PURE_CMDS))

# cross: the pure-Go binaries for linux, darwin and windows, amd64 and arm64.
cross:
	@for os in linux darwin windows; do for arch in amd64 arm64; do \
		echo "cross: $$os/$$arch"; \
		for c in $(PURE_CMDS); do \
			CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/cross/$$os-$$arch/ ./cmd/$$c || exit 1; \
		done; done; done

clean:
	rm -rf $(BIN) $(STATE) bench.out bench-accuracy.md
