# Coffer — build and test entry points. `make test` is the whole suite.
GO ?= go
PKGS := ./...

.PHONY: all build test test-short vet fmt bench fuzz clean

all: build

build:
	$(GO) build -o bin/coffer ./cmd/coffer

## test: vet, then every test (unit, integration, crash) with the race detector.
test: vet
	$(GO) test -race -count=1 -timeout 45m $(PKGS)
	# Timing properties are measured without the race detector's noise.
	$(GO) test -count=1 -run 'Timing' ./internal/auth/userpass/

## test-short: the quick unit tests only.
test-short:
	$(GO) test -short -count=1 $(PKGS)

vet:
	@out=$$(gofmt -l cmd internal); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

## bench: the benchmarks recorded in docs/benchmarks.md.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./internal/barrier/ ./internal/storage/bolt/ ./internal/shamir/

## fuzz: run each fuzz target for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	@for p in $$($(GO) list ./internal/...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$p | grep '^Fuzz'); do \
	    echo "== $$p $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$p || exit 1; \
	  done; \
	done

clean:
	rm -rf bin
