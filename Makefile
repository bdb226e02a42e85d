# Gatehouse developer targets.
#
#   make build   # the gatehouse binary, ./gatehouse
#   make test    # the whole test suite, as CI runs it (scripts/test)
#   make bench   # the benchmark suite beside nginx and dd (~8 min on 2 cores;
#                # results in bench-out/). BENCHFLAGS=-quick for a smoke run.

GO ?= go
BENCHFLAGS ?=

.PHONY: build test bench bench-tools

# -buildvcs=auto records the git revision (shown by `gatehouse version`)
# even when GOFLAGS turns it off; the build time is not recorded by Go.
build:
	$(GO) build -buildvcs=auto -ldflags "-X main.buildTime=$$(date -u +%Y-%m-%dT%H:%M:%SZ)" -o gatehouse ./cmd/gatehouse

test:
	scripts/test

# The suite needs nginx and wrk from Debian (spec Part 4.1 rule 7); install
# them when missing. taskset (util-linux) is used when present.
bench-tools:
	@command -v nginx >/dev/null && command -v wrk >/dev/null || { \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  echo "make bench: installing nginx-light and wrk"; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends nginx-light wrk; }

# Built first and then run, rather than `go run`, so that Ctrl-C reaches
# the suite directly and it can stop the servers it started.
bench: bench-tools
	@mkdir -p bench-out
	$(GO) build -o bench-out/benchsuite ./cmd/benchsuite
	./bench-out/benchsuite $(BENCHFLAGS)
