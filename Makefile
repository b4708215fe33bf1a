# contactlevel metering — build, run and test.
#
#   make run     local API on http://127.0.0.1:3000 backed by DynamoDB Local
#   make test    go vet, go test (against an in-memory DynamoDB Local) and cfn-lint
#   make build   all functions into bin/<Function>/bootstrap (linux/arm64)
#   sam build    calls the build-<Function> targets below (BuildMethod: makefile)

SHELL := /bin/bash
.DEFAULT_GOAL := help

# Function logical ID in template.yaml -> its directory under functions/.
# Adding a function is one line here (plus the template resource).
FUNCTIONS := \
	AuthorizerFunction:authorizer \
	CreditsFunction:credits \
	ContactsFunction:contacts \
	AudiencesFunction:audiences \
	AdminFunction:admin \
	RolloverFunction:rollover

GO          ?= go
LAMBDABUILD := CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags="-s -w"
GOBUILD     := GOOS=linux GOARCH=arm64 $(LAMBDABUILD)
DDB         := infra/dynamodb-local.sh
# DynamoDB Local for tests: in memory, on its own port, never the demo data.
TEST_DDB_PORT ?= 8765
GOTESTFLAGS ?=
# make test keeps all go test output (-v: every test's logs) to scan it for keys.
TESTLOG     := .cache/test/go-test.log
TESTKEYS    := .cache/test/issued-keys.txt
# Lines of -v output not worth a terminal: passing tests' names and JSON logs.
TESTNOISE   := ^\s*(=== (RUN|PAUSE|CONT|NAME)|--- PASS|PASS$$|\{"time")
FUZZTIME    ?= 10s
# package:target for make fuzz; CI runs each for FUZZTIME.
FUZZ_TARGETS := \
	./shared/apikey:FuzzParse \
	./shared/authorizer:FuzzHandle \
	./shared/idempotency:FuzzParseKey \
	./shared/api:FuzzCreateContact \
	./shared/api:FuzzCreateAudience

fn_id  = $(word 1,$(subst :, ,$(1)))
fn_dir = $(word 2,$(subst :, ,$(1)))

# build-<Function>: what `sam build` runs, with ARTIFACTS_DIR set by SAM.
define FUNCTION_RULES
.PHONY: build-$(call fn_id,$(1))
build-$(call fn_id,$(1)):
	$$(if $$(ARTIFACTS_DIR),,$$(error ARTIFACTS_DIR is not set; sam build sets it, or use make build))
	$$(GOBUILD) -o $$(ARTIFACTS_DIR)/bootstrap ./functions/$(call fn_dir,$(1))

bin/$(call fn_id,$(1))/bootstrap: FORCE
	$$(GOBUILD) -o $$@ ./functions/$(call fn_dir,$(1))
endef
$(foreach f,$(FUNCTIONS),$(eval $(call FUNCTION_RULES,$(f))))

BOOTSTRAPS := $(foreach f,$(FUNCTIONS),bin/$(call fn_id,$(f))/bootstrap)

.PHONY: help build run admin test fuzz vet unit lint fmt ddb-start ddb-stop clean rollover bench-rollover bench FORCE
FORCE:

## help: this list
help:
	@grep -E '^## ' $(firstword $(MAKEFILE_LIST)) | sed 's/^## //'

## build: every function as a linux/arm64 Lambda bootstrap under bin/, with sizes
build: $(BOOTSTRAPS)
	@ls -l $(BOOTSTRAPS) | awk '{printf "%8.1f MB  %s\n", $$5/1048576, $$NF}'

## run: local API Gateway + Lambda + DynamoDB Local (data kept in .data/);
## flags go in ARGS, e.g. make run ARGS='-param AuthorizerCacheTtl=0'
# Built, then run, rather than go run: go run exits 1 after a Ctrl-C even
# when the program shuts down cleanly.
run:
	@$(GO) build -o bin/local ./infra/local
	@bin/local $(ARGS)

## admin: the operators' CLI against make run's DynamoDB Local, e.g.
## make admin ARGS='org create --name Acme --plan starter' (make admin ARGS=--help)
admin:
	@$(GO) build -o bin/admin ./infra/admin
	@bin/admin $(ARGS)

## test: vet, unit and DynamoDB Local integration tests, template lint.
## DynamoDB Local is started in memory on TEST_DDB_PORT unless one already
## answers there, and stopped again afterwards if this target started it.
test:
	@set -euo pipefail; \
	state=$$($(DDB) --port $(TEST_DDB_PORT) --in-memory ensure); \
	if [[ $$state == started ]]; then trap '$(DDB) --port $(TEST_DDB_PORT) stop' EXIT; fi; \
	unset AWS_PROFILE AWS_SESSION_TOKEN; \
	export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$(TEST_DDB_PORT) AWS_REGION=us-east-1 \
		AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_EC2_METADATA_DISABLED=true; \
	echo "+ go vet ./..."; $(GO) vet ./...; \
	mkdir -p $(dir $(TESTLOG)); : > $(TESTLOG); : > $(TESTKEYS); export TEST_ISSUED_KEYS=$(abspath $(TESTKEYS)); \
	echo "+ go test -count=1 -v $(GOTESTFLAGS) ./...  (everything it prints: $(TESTLOG))"; \
	$(GO) test -count=1 -v $(GOTESTFLAGS) ./... 2>&1 | tee $(TESTLOG) | { grep -vE '$(TESTNOISE)' || true; }; \
	echo "+ log scan: no issued key, key hash or valid key anywhere in the test output"; \
	$(GO) run ./infra/logscan -keys $(TESTKEYS) -min-keys 10 $(TESTLOG); \
	echo "+ cfn-lint template.yaml"; cfn-lint template.yaml; \
	echo "make test: all passed"

## fuzz: every fuzz target for FUZZTIME each (default 10s), after its seed corpus
fuzz:
	@set -euo pipefail; mkdir -p .cache; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "+ go test -run '^$$' -fuzz '^$$fn\$$' -fuzztime $(FUZZTIME) $$pkg"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg 2>&1 | tee .cache/fuzz.log | grep -vE '^fuzz: elapsed: [0-9]+s, (gathering|execs)' || true; \
		grep -q '^ok' .cache/fuzz.log || { cat .cache/fuzz.log; exit 1; }; \
		echo "fuzz summary: $$fn $$(grep -oE 'execs: [0-9]+' .cache/fuzz.log | tail -n 1)"; \
	done

## lint: gofmt, go vet and cfn-lint (no DynamoDB needed)
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null); \
	if [[ -n $$out ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cfn-lint template.yaml

fmt:
	gofmt -w $$(git ls-files '*.go')

## ddb-start: DynamoDB Local on port 8000 (left running) with the tables and
## demo data, for sam local start-api; ddb-stop stops it
ddb-start:
	@$(GO) build -o bin/local ./infra/local
	@bin/local -setup

ddb-stop:
	@$(DDB) stop

## rollover: run a month's subscription rollover by hand against DynamoDB Local
## (make run's, port 8000), e.g. make rollover ARGS='--period 2026-12 --dry-run'
rollover:
	@$(GO) run ./infra/rollover $(ARGS)

## bench-rollover: roll over BENCH_N organizations (100000) on an in-memory
## DynamoDB Local on BENCH_DDB_PORT, next to the bare UpdateItem loop (the ceiling)
BENCH_DDB_PORT ?= 8766
BENCH_N ?= 100000
bench-rollover:
	@set -euo pipefail; \
	state=$$($(DDB) --port $(BENCH_DDB_PORT) --in-memory ensure); \
	if [[ $$state == started ]]; then trap '$(DDB) --port $(BENCH_DDB_PORT) stop' EXIT; fi; \
	unset AWS_PROFILE AWS_SESSION_TOKEN; \
	export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$(BENCH_DDB_PORT) AWS_REGION=us-east-1 \
		AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_EC2_METADATA_DISABLED=true; \
	$(GO) run ./infra/bench/rollover -n $(BENCH_N) $(ARGS)

## bench: the request path against DynamoDB's own ceiling, DynamoDB calls
## per request, bootstrap sizes and start-up times (a few minutes); its own
## in-memory DynamoDB Local on BENCH_DDB_PORT; flags in BENCH_ARGS
BENCH_ARGS     ?=
# Start-up is timed on this machine, so the bootstraps are also built for
# its own OS and architecture, with the flags of the Lambda build.
bench: build
	@set -e; for f in $(FUNCTIONS); do \
		$(LAMBDABUILD) -o bin/host/$${f%%:*}/bootstrap ./functions/$${f#*:}; \
	done
	$(GO) run ./infra/bench -ddb-port $(BENCH_DDB_PORT) -sizes bin -startup bin/host $(BENCH_ARGS)

## clean: build outputs (keeps the DynamoDB Local download and the local data)
clean:
	rm -rf bin .aws-sam
