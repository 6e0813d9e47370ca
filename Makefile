# Tools are pinned by version and run with "go run", so nothing needs to be
# installed beyond Go itself.
GO          ?= go
BUF         := $(GO) run github.com/bufbuild/buf/cmd/buf@v1.75.0
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Fuzz budgets are counts of runs, not durations: with a duration, Go 1.26's
# fuzz coordinator can fail a target with "context deadline exceeded" at the
# deadline although nothing was found (golang/go#75804, fixed in Go 1.27).
FUZZTIME    ?= 20000x
FUZZ_TARGETS := tlog:FuzzParseCheckpoint tlog:FuzzParseEntry tlog:FuzzParseProof tlog:FuzzParseRecordExtra \
	tlog:FuzzParseSignerKey tlog:FuzzVerifyInclusion tlog:FuzzVerifyConsistency \
	tlog:FuzzParseTilePath tlog:FuzzParseWitnessPolicy tlog:FuzzNewCosignatureVerifier tlog:FuzzParseAddCheckpoint tlog:FuzzParseCosignerKey \
	storage:FuzzCheckpointRecord storage:FuzzDecodeEdgeTile \
	server:FuzzValidateEvent server:FuzzRequests server:FuzzDashboardAPI server:FuzzParsePolicy server:FuzzParseTokenLine \
	client:FuzzVerifyEvidence client:FuzzVerifyExport client:FuzzVerifyProvenEvent \
	cmd/tlogctl:FuzzParseBaseline cmd/tlogctl:FuzzReadJSONLines cmd/tlogctl:FuzzParseTreeState

SOAK        ?= 10m

.PHONY: build run gen check-gen lint test bench bench-report fuzz soak ci

## build: compile tlogd, tlogctl and tlogbench into ./bin
build:
	$(GO) build -o bin/ ./cmd/...

## run: run tlogd on its embedded default (./tlogd-data, 127.0.0.1:7400)
run:
	$(GO) run ./cmd/tlogd serve

## gen: regenerate the Go code for the API from proto/
gen:
	$(BUF) generate

## check-gen: fail if the generated code is not what gen produces
check-gen: gen
	@if [ -n "$$(git status --porcelain -- proto)" ]; then \
		echo "generated code is stale; run make gen and commit:"; git status --porcelain -- proto; exit 1; fi

## lint: gofmt, go vet, buf lint, staticcheck
lint:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(BUF) lint
	$(STATICCHECK) ./...

## test: vet and run every test with the race detector
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 30m ./...

## fuzz: run each fuzz target FUZZTIME times (default 20000x)
fuzz:
	@for pt in $(FUZZ_TARGETS); do \
		p=$${pt%%:*}; t=$${pt#*:}; \
		echo "fuzz $$p $$t for $(FUZZTIME)"; \
		$(GO) test ./$$p -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

## soak: run tlogd for SOAK (default 10m) under steady load while readers
## verify proofs; fails on any verification failure or growing memory
soak:
	TLOGD_SOAK=$(SOAK) $(GO) test -count=1 -timeout 3h -run '^TestSoak$$' -v ./cmd/tlogd

## bench-report: run every benchmark behind a performance target (about 25
## minutes; nothing else should run) and rewrite the table in BENCHMARKS.md
bench-report: build
	bin/tlogbench report -out BENCHMARKS.md

## bench: in-process benchmarks (sequencer alone, tree, proofs)
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./tlog ./storage

## ci: everything CI runs
ci: check-gen lint test fuzz
