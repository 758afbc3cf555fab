# Sous: the two commands a newcomer needs are `make run` and `make test`.
GO        ?= go
BIN       := bin/sous
PKGS      := ./...
FUZZTIME  ?= 10s
STATICCHECK_VERSION ?= v0.8.2

.PHONY: build run test unit fuzz examples check-generated check-tidy lint generate bench clean

build: ## build bin/sous
	$(GO) build -o $(BIN) ./cmd/sous

run: build ## validate and test the example recipes (the runtime serves them once it lands)
	$(BIN) validate examples/
	$(BIN) test -v examples/

test: check-tidy unit fuzz examples ## everything CI checks

check-tidy: ## go.mod and go.sum must be tidy (-e: the proxy refuses a test-only dependency of modernc.org/sqlite)
	$(GO) mod tidy -e -diff

unit: ## unit and integration tests with the race detector (includes the stale-generated-files check)
	$(GO) vet $(PKGS)
	$(GO) test -race -shuffle=on -count=1 $(PKGS)

fuzz: ## bounded fuzzing of the parsers
	$(GO) test -run='^$$' -fuzz='^FuzzParseRecipe$$' -fuzztime=$(FUZZTIME) ./recipes
	$(GO) test -run='^$$' -fuzz='^FuzzParseConfig$$' -fuzztime=$(FUZZTIME) ./recipes
	$(GO) test -run='^$$' -fuzz='^FuzzTemplate$$' -fuzztime=$(FUZZTIME) ./recipes

examples: build ## the examples validate and their tests pass
	$(BIN) validate examples/
	$(BIN) test examples/

lint: ## go vet and staticcheck
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

generate: ## regenerate schemas/recipe.schema.json and docs/connectors.md from the connector specs
	$(GO) run ./internal/gen .

bench: ## benchmarks (figures in docs/performance.md)
	$(GO) test -run='^$$' -bench=. -benchmem -cpu=1 ./recipes/...

clean:
	rm -rf bin
