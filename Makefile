# Sous: the two commands a newcomer needs are `make run` and `make test`.
GO        ?= go
BIN       := bin/sous
PKGS      := ./...
# Fuzz budgets are counts of executions (about 10 s each on this machine),
# not durations: a -fuzztime duration can fail a target with "context
# deadline exceeded" and no failing input (golang/go#75804, fixed in Go
# 1.27). FUZZTIME=30s (or 1000000x) overrides them all.
FUZZTIME  ?=
fuzzbudget = $(or $(FUZZTIME),$(1))
STATICCHECK_VERSION ?= v0.8.2

.PHONY: build run test services unit fuzz examples check-tidy check-fmt lint generate bench clean

build: ## build bin/sous
	@[ -e $(BIN) ] || echo "Building $(BIN) for the first time: compiling the dependencies may take a few minutes, with no output until it is done."
	$(GO) build -o $(BIN) ./cmd/sous

# Signing secrets for the example webhooks, for trying Sous locally only.
DEV_SECRETS := SOUS_SECRET_ALERTMANAGER_TOKEN=dev-only SOUS_SECRET_SHOP_WEBHOOK=dev-only SOUS_SECRET_WEBSITE_FORMS_WEBHOOK=dev-only SOUS_SECRET_GITHUB_WEBHOOK=dev-only SOUS_SECRET_BOOKINGS_WEBHOOK=dev-only SOUS_SECRET_INCIDENTS_WEBHOOK=dev-only

# The address `make run` serves on (make run LISTEN=127.0.0.1:9090): examples/sous.yaml
# reads it from SOUS_LISTEN, for `listen` and for the hello recipe's connection.
LISTEN ?= 127.0.0.1:8080

run: build ## serve the example recipes on http://$(LISTEN) with the embedded store (data/)
	SOUS_LISTEN=$(LISTEN) $(BIN) validate --config examples/sous.yaml examples/
	SOUS_LISTEN=$(LISTEN) $(DEV_SECRETS) $(BIN) serve --config examples/sous.yaml

test: services check-tidy check-fmt lint unit fuzz examples ## everything CI checks

services: ## start PostgreSQL and NATS (JetStream) for the integration tests when installed but down
	@bash scripts/test-services.sh

check-fmt: ## every Go file is gofmt-formatted
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

check-tidy: ## go.mod and go.sum must be tidy (-e: the proxy refuses a test-only dependency of modernc.org/sqlite)
	$(GO) mod tidy -e -diff

unit: ## unit and integration tests with the race detector (includes the stale-generated-files check)
	$(GO) test -race -shuffle=on -count=1 $(PKGS)
	# the allocation tests skip themselves under the race detector, which allocates
	$(GO) test -count=1 -run 'Allocations' ./engine/runner/
	cd integrations/zapier && npm ci --no-audit --no-fund --loglevel=error && npm test # the Zapier app against a sous serve it starts

fuzz: ## bounded fuzzing of the parsers
	$(GO) test -run='^$$' -fuzz='^FuzzParseRecipe$$' -fuzztime=$(call fuzzbudget,100000x) ./recipes
	$(GO) test -run='^$$' -fuzz='^FuzzParseConfig$$' -fuzztime=$(call fuzzbudget,100000x) ./recipes
	$(GO) test -run='^$$' -fuzz='^FuzzTemplate$$' -fuzztime=$(call fuzzbudget,30000x) ./recipes
	$(GO) test -run='^$$' -fuzz='^FuzzIntake$$' -fuzztime=$(call fuzzbudget,20000x) ./engine/server
	$(GO) test -run='^$$' -fuzz='^FuzzDecodedPayload$$' -fuzztime=$(call fuzzbudget,20000x) ./triggers/webhook
	$(GO) test -run='^$$' -fuzz='^FuzzRunRecipe$$' -fuzztime=$(call fuzzbudget,20000x) ./engine/server
	$(GO) test -run='^$$' -fuzz='^FuzzAPI$$' -fuzztime=$(call fuzzbudget,20000x) ./engine/server
	$(GO) test -run='^$$' -fuzz='^FuzzParseRequest$$' -fuzztime=$(call fuzzbudget,100000x) ./cmd/sous-bench
	$(GO) test -run='^$$' -fuzz='^FuzzRecordEncoding$$' -fuzztime=$(call fuzzbudget,20000x) ./engine/pipeline
	$(GO) test -run='^$$' -fuzz='^FuzzParseSettings$$' -fuzztime=$(call fuzzbudget,20000x) ./engine/service
	$(GO) test -run='^$$' -fuzz='^FuzzDeclaredShape$$' -fuzztime=$(call fuzzbudget,20000x) ./engine/connector
	$(GO) test -run='^$$' -fuzz='^FuzzParseRate$$' -fuzztime=$(call fuzzbudget,20000x) ./engine/connector
	$(GO) test -run='^$$' -fuzz='^FuzzVerify$$' -fuzztime=$(call fuzzbudget,10000x) ./internal/clients/slack
	$(GO) test -run='^$$' -fuzz='^FuzzParseRequest$$' -fuzztime=$(call fuzzbudget,10000x) ./internal/clients/slack
	$(GO) test -run='^$$' -fuzz='^FuzzReceive$$' -fuzztime=$(call fuzzbudget,10000x) ./triggers/slack
	$(GO) test -run='^$$' -fuzz='^FuzzVerify$$' -fuzztime=$(call fuzzbudget,10000x) ./internal/clients/zoom
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(call fuzzbudget,10000x) ./internal/clients/zoom
	$(GO) test -run='^$$' -fuzz='^FuzzReceive$$' -fuzztime=$(call fuzzbudget,10000x) ./triggers/zoom
	$(GO) test -run='^$$' -fuzz='^FuzzVerify$$' -fuzztime=$(call fuzzbudget,10000x) ./internal/clients/jira
	$(GO) test -run='^$$' -fuzz='^FuzzADF$$' -fuzztime=$(call fuzzbudget,10000x) ./internal/clients/jira
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(call fuzzbudget,10000x) ./triggers/jira
	$(GO) test -run='^$$' -fuzz='^FuzzReceive$$' -fuzztime=$(call fuzzbudget,10000x) ./triggers/jira
	$(GO) test -run='^$$' -fuzz='^FuzzParseMessage$$' -fuzztime=$(call fuzzbudget,10000x) ./triggers/email
	$(GO) test -run='^$$' -fuzz='^FuzzValidate$$' -fuzztime=$(call fuzzbudget,10000x) ./engine/zapier
	$(GO) test -run='^$$' -fuzz='^FuzzParseEvent$$' -fuzztime=$(call fuzzbudget,10000x) ./triggers/gcal
	$(GO) test -run='^$$' -fuzz='^FuzzParseChange$$' -fuzztime=$(call fuzzbudget,10000x) ./triggers/gdrive
	$(GO) test -run='^$$' -fuzz='^FuzzParsePage$$' -fuzztime=$(call fuzzbudget,10000x) ./triggers/dropbox
	$(GO) test -run='^$$' -fuzz='^FuzzParseMessage$$' -fuzztime=$(call fuzzbudget,10000x) ./triggers/outlook

examples: build ## the examples validate and their tests pass
	$(BIN) validate examples/
	$(BIN) test examples/

lint: ## go vet and staticcheck
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

generate: ## regenerate schemas/recipe.schema.json, schemas/config.schema.json and docs/connectors.md from the connector specs
	$(GO) run ./internal/gen .

bench: build ## benchmarks and the end-to-end load test (figures in docs/performance.md)
	$(GO) test -run='^$$' -bench=. -benchmem -cpu=1 ./recipes/...
	$(GO) test -run='^$$' -bench='Match|Retained' -benchmem -cpu=1 ./engine/pipeline/
	$(GO) test -run='^$$' -bench=Filter -benchmem -cpu=1 ./engine/runner/
	$(GO) test -run='^$$' -bench=Client -benchmem -cpu=1 ./engine/connector/
	$(GO) test -run='^$$' -bench='PipelineSQLite|DrainSQLite' -benchmem -benchtime=20000x ./engine/pipeline/
	$(GO) test -run='^$$' -bench=ClaimBacklog -benchtime=300x ./engine/broker/sqlite/sqlqueue/
	$(GO) test -run='^$$' -bench=PruneStall -benchtime=1x ./engine/store/
	$(GO) test -run='^$$' -bench=BenchmarkStats -benchtime=5x ./engine/store/
	$(GO) test -run='^$$' -bench=ServiceWebhooks -benchtime=5000x -count=3 ./cmd/sous/
	$(GO) test -run='^$$' -bench=Actions -benchmem -benchtime=20000x -count=3 ./internal/hosttest/
	$(GO) test -run='^$$' -bench=Deliveries -benchtime=50x -count=3 ./engine/zapier/
	$(GO) run ./cmd/sous-bench -sous $(BIN) -c 64 -d 10s
	$(GO) run ./cmd/sous-bench -sous $(BIN) -c 64 -d 10s -rate 4500
	$(GO) run ./cmd/sous-bench -sous $(BIN) -c 128 -d 10s
	$(GO) run ./cmd/sous-bench -sous $(BIN) -c 256 -d 10s
	$(GO) run ./cmd/sous-bench -sous $(BIN) -c 64 -d 10s -recipes 10000
	$(GO) run ./cmd/sous-bench -floor -c 64 -d 10s

clean:
	rm -rf bin
