# The two commands a newcomer needs: `make demo` and `make test`.
# Both install their own npm packages; nothing else needs to be running.

GO ?= go
NPM ?= npm
NPM_INSTALL = $(NPM) ci --no-audit --no-fund --loglevel=error

CHAT_WEB = examples/functions/chat/web
INTEROP = test/interop
NODE_CHAT = examples/functions/node-chat

.PHONY: demo test tour npm vet fuzz build image

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

## image: container images of the gateway and the example chat function, FROM scratch (docs/cluster.md#containers)
CONTAINER ?= podman
IMAGE ?= localhost/switchboard:latest
FUNCTION_IMAGE ?= localhost/switchboard-chat-fn:latest
CA_CERTS ?= /etc/ssl/certs/ca-certificates.crt
SIGNALR_JS = node_modules/@microsoft/signalr/dist/browser/signalr.min.js
image: $(CHAT_WEB)/node_modules
	rm -rf bin/image && mkdir -p bin/image/data bin/image/web/$(dir $(SIGNALR_JS))
	cp $(CHAT_WEB)/$(SIGNALR_JS) bin/image/web/$(SIGNALR_JS)
	CGO_ENABLED=0 $(GO) build -ldflags='-s -w' -o bin/image/switchboard ./cmd/switchboard
	CGO_ENABLED=0 $(GO) build -ldflags='-s -w' -o bin/image/chat-fn ./examples/functions/chat/cmd/chat
	cp $(CA_CERTS) bin/image/ca-certificates.crt
	$(CONTAINER) build --target gateway -t $(IMAGE) .
	$(CONTAINER) build --target chat-fn -t $(FUNCTION_IMAGE) .
