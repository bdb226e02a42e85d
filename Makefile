# Gatehouse developer targets.
#
#   make build   # the gatehouse binary, ./gatehouse
#   make test    # the whole test suite, as CI runs it (scripts/test)
#   make bench   # the benchmark suite beside nginx, bare Go, dd and pip on static
#                # files (about 30 min on 2 cores; results in bench-out/).
#                # BENCHFLAGS=-quick for a smoke run under two minutes;
#                # BENCHFLAGS=-docs-dir=docs also updates docs/benchmarks-*.svg.

GO ?= go
BENCHFLAGS ?=

.PHONY: build test bench bench-tools

# -buildvcs=auto records the git revision (shown by `gatehouse version`)
# even when GOFLAGS turns it off; the build time is not recorded by Go.
build:
	$(GO) build -buildvcs=auto -ldflags "-X main.buildTime=$$(date -u +%Y-%m-%dT%H:%M:%SZ)" -o gatehouse ./cmd/gatehouse

test:
	scripts/test

# The suite needs nginx, wrk, curl, twine and pip from Debian
# (spec Part 4.1 rule 7); install them when missing. taskset (util-linux)
# is used when present.
bench-tools:
	@command -v nginx >/dev/null && command -v wrk >/dev/null && command -v curl >/dev/null && \
	  [ -x /usr/bin/twine ] && /usr/bin/python3 -m pip --version >/dev/null 2>&1 || { \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  echo "make bench: installing nginx-light, wrk, curl, twine and python3-pip"; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends nginx-light wrk curl twine python3-pip; }

# Built first and then run, rather than `go run`, so that Ctrl-C reaches
# the suite directly and it can stop the servers it started.
bench: bench-tools
	@mkdir -p bench-out
	$(GO) build -o bench-out/benchsuite ./cmd/benchsuite
	./bench-out/benchsuite -versitygw "$$(scripts/versitygw)" $(BENCHFLAGS)
