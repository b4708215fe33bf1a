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
	AudiencesFunction:audiences

GO          ?= go
LAMBDABUILD := CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags="-s -w"
GOBUILD     := GOOS=linux GOARCH=arm64 $(LAMBDABUILD)
DDB         := infra/dynamodb-local.sh
# DynamoDB Local for tests: in memory, on its own port, never the demo data.
TEST_DDB_PORT ?= 8765
GOTESTFLAGS ?=

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

.PHONY: help build run test vet unit lint fmt ddb-start ddb-stop clean bench FORCE
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
	echo "+ go test -count=1 $(GOTESTFLAGS) ./..."; $(GO) test -count=1 $(GOTESTFLAGS) ./...; \
	echo "+ cfn-lint template.yaml"; cfn-lint template.yaml; \
	echo "make test: all passed"

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

## bench: the request path against DynamoDB's own ceiling, DynamoDB calls
## per request, bootstrap sizes and start-up times (a few minutes); its own
## in-memory DynamoDB Local on BENCH_DDB_PORT; flags in BENCH_ARGS
BENCH_DDB_PORT ?= 8786
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
