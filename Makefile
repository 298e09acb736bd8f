# The two commands a newcomer needs: `make demo` and `make test`.
# Both install their own npm packages; nothing else needs to be running.

GO ?= go
NPM ?= npm
NPM_INSTALL = $(NPM) ci --no-audit --no-fund --loglevel=error

CHAT_WEB = examples/functions/chat/web
INTEROP = test/interop
NODE_CHAT = examples/functions/node-chat

.PHONY: demo test tour npm vet fuzz build

## demo: gateway + example chat function + chat page on http://127.0.0.1:3000
demo: $(CHAT_WEB)/node_modules
	$(GO) run ./cmd/switchboard demo

## test: vet, then every test with the race detector (the docs' tour included: e2e/tour_test.go)
test: npm vet
	$(GO) test -race -count=1 ./...

## tour: README's tour, docs/getting-started.md and docs/webhooks.md, top to bottom, on free ports
tour: npm
	scripts/tour.sh

npm: $(CHAT_WEB)/node_modules $(INTEROP)/node_modules $(NODE_CHAT)/node_modules

%/node_modules: %/package-lock.json
	cd $* && $(NPM_INSTALL)
	@touch $@

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt wants changes:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

## fuzz: run every fuzz target briefly (FUZZTIME each)
FUZZTIME ?= 10s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

build:
	$(GO) build -o bin/ ./cmd/...
