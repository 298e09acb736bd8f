#!/usr/bin/env bash
# tour.sh runs, top to bottom, the shell commands of README.md's tour,
# docs/getting-started.md and docs/webhooks.md, as a newcomer would type them,
# against a switchboard binary built from this tree, and checks what they
# print. Everything listens on free ports on 127.0.0.1 and lives in a
# temporary folder; the docs' ports 8080, 3000 and 8081 become $GW_PORT,
# $APP_PORT and $NODE_PORT.
#
# e2e/tour_test.go runs it (so `make test` does) and checks that every shell
# command in those docs appears here as written (ports aside), or, where the
# docs show a placeholder (sbadm_…), in a "# doc:" line right above the
# command that stands for it. A doc change without a change here fails it.
#
# Needs go, node, curl, openssl, xxd and base64, and `make npm` (for
# @microsoft/signalr and standardwebhooks).
set -euo pipefail
set -m # each background job in a process group of its own, so cleanup ends `go run`'s child too

cd "$(dirname "$0")/.."
REPO=$PWD
WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-tour.XXXXXX")
for v in $(compgen -e | grep '^SWITCHBOARD_' || true); do unset "$v"; done
printf 'silent\nshow-error\n' >"$WORK/.curlrc" # the docs' curl commands as written, without progress meters
export CURL_HOME="$WORK"

pids=()
cleanup() {
	local status=$?
	for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do # the gateway drains within its 10 s shutdown timeout
		for _ in $(seq 200); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL -- "-$pid" 2>/dev/null || true
	done
	if [ "$status" -ne 0 ]; then
		for f in "$WORK"/*.out; do [ -f "$f" ] && { echo "== $f"; tail -n 40 "$f"; }; done >&2
	fi
	rm -rf "$WORK"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { echo "== tour: $*"; }
fail() { echo "tour: $*" >&2; exit 1; }
# expect WANT GOT WHAT: GOT must contain WANT.
expect() { grep -qF -- "$1" <<<"$2" || fail "$3: want \"$1\" in:"$'\n'"$2"; }
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
# wait_http URL WHAT: until something answers at URL (any status), at most 180 s.
wait_http() {
	for _ in $(seq 1800); do
		curl -s -o /dev/null --max-time 2 "$1" && return 0
		sleep 0.1
	done
	fail "$2 did not answer at $1"
}
# wait_line FILE PATTERN WHAT: until FILE has a line matching PATTERN, at most 60 s.
wait_line() {
	for _ in $(seq 600); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "$3: no line matching \"$2\" in $1"
}
GW_PORT=${TOUR_GW_PORT:-$(free_port)}
APP_PORT=${TOUR_APP_PORT:-$(free_port)}
NODE_PORT=${TOUR_NODE_PORT:-$(free_port)}
DEMO_GW_PORT=$(free_port)
DEMO_APP_PORT=$(free_port)
[ -d test/interop/node_modules/@microsoft/signalr ] && [ -d examples/functions/node-chat/node_modules/standardwebhooks ] &&
	[ -d examples/functions/chat/web/node_modules/@microsoft/signalr ] || fail "npm packages missing: run make npm"

step "README: a switchboard on the PATH"
GOBIN="$WORK/bin" go install ./cmd/switchboard
# doc: export PATH="$(go env GOPATH)/bin:$PATH"
export PATH="$WORK/bin:$PATH"
[ "$(command -v switchboard)" = "$WORK/bin/switchboard" ] || fail "switchboard on the PATH is $(command -v switchboard), not the one just built"

step "README: make demo"
# doc: make demo
# (the make target is `go run ./cmd/switchboard demo` on 127.0.0.1:8080 and :3000; the binary just built is the same code)
(exec switchboard demo --listen 127.0.0.1:$DEMO_GW_PORT --app-listen 127.0.0.1:$DEMO_APP_PORT >"$WORK/demo.out" 2>&1) &
demo=$!
pids+=($demo)
wait_http "http://127.0.0.1:$DEMO_APP_PORT/" "the demo's chat app"
expect "signalr" "$(curl -fsS --max-time 10 "http://127.0.0.1:$DEMO_APP_PORT/")" "the demo's chat page"
wait_line "$WORK/demo.out" "Admin key for this run" "make demo"
kill -TERM -- "-$demo"

step "README: start a gateway"
(cd "$WORK" && exec switchboard serve --listen 127.0.0.1:$GW_PORT --public-url http://127.0.0.1:$GW_PORT >serve.out 2>&1) &
pids+=($!)
wait_http "http://127.0.0.1:$GW_PORT/healthz" "the gateway"
wait_line "$WORK/serve.out" "Switchboard listening" "the first start" # printed after the keys
out=$(cat "$WORK/serve.out")
expect "Switchboard listening on 127.0.0.1:$GW_PORT (http://127.0.0.1:$GW_PORT)" "$out" "serve"
expect "First start: keys generated and stored. Keep these secret." "$out" "serve"
expect "Connection string: Endpoint=http://127.0.0.1:$GW_PORT;AccessKey=" "$out" "serve"
ADMIN=$(sed -n 's/^ *Admin key: *//p' "$WORK/serve.out")
CS=$(sed -n 's/^ *Connection string: *//p' "$WORK/serve.out")
# doc: export SWITCHBOARD_ADMIN_KEY='sbadm_…' SWITCHBOARD_CONNECTION_STRING='Endpoint=http://127.0.0.1:8080;AccessKey=…;Version=1.0;KeyId=…;'
export SWITCHBOARD_ADMIN_KEY="$ADMIN" SWITCHBOARD_CONNECTION_STRING="$CS"
expect "sbadm_" "$SWITCHBOARD_ADMIN_KEY" "the admin key"

step "README: a hub and a secret"
expect "hub chat created" "$(switchboard hub add chat)" "hub add"
export CHAT_WEBHOOK_SECRET=$(switchboard upstream secret generate)
expect "whsec_" "$CHAT_WEBHOOK_SECRET" "secret generate"

step "README: the function, then its registration"
(exec go run ./examples/functions/hello --listen 127.0.0.1:$APP_PORT >"$WORK/hello.out" 2>&1) &
pids+=($!)
wait_http "http://127.0.0.1:$APP_PORT/api/webhook" "the hello function"
out=$(switchboard upstream add fn --hub chat --url http://127.0.0.1:$APP_PORT/api/webhook \
	--events 'connect,connected,disconnected,message:*' --secret "$CHAT_WEBHOOK_SECRET" 2>&1)
expect "upstream fn registered on hub chat" "$out" "upstream add"
expect "signing secret: the one given with --secret" "$out" "upstream add"
[ "$(switchboard upstream secret show fn --hub chat)" = "$CHAT_WEBHOOK_SECRET" ] || fail "the registered secret is not the one given"

step "README: a client through the function's negotiate"
mkdir "$WORK/client"
ln -s "$REPO/test/interop/node_modules" "$WORK/client/node_modules"
cat >"$WORK/client/client.mjs" <<'JS'
import * as signalR from "@microsoft/signalr";

const conn = new signalR.HubConnectionBuilder().withUrl("http://127.0.0.1:3000/api?user=alice").build();
const received = new Promise((resolve) => conn.on("newMessage", (user, text) => resolve(`${user}: ${text}`)));
await conn.start();
console.log(await conn.invoke("sendMessage", "hello")); // sent
console.log(await received); // alice: hello (the broadcast reaches everyone in the hub)
await conn.invoke("sendMessage").catch((err) => console.log(err.message)); // sendMessage takes one non-empty string
await conn.stop();
JS
sed -i "s/127.0.0.1:3000/127.0.0.1:$APP_PORT/" "$WORK/client/client.mjs"
# The stock client logs "[time] Information: …" lines; the rest is what the snippet prints.
run_client() { (cd "$WORK/client" && timeout 60 node client.mjs 2>&1) | grep -v '^\[' ; }
out=$(run_client) || fail "client.mjs: $out"
[ "$out" = $'sent\nalice: hello\nsendMessage takes one non-empty string' ] || fail "client.mjs printed:"$'\n'"$out"

out=$(switchboard token --hub chat --user alice)
expect "url:   http://127.0.0.1:$GW_PORT/client/?hub=chat" "$out" "token"
expect "token: eyJ" "$out" "token"

step "getting-started: hubs"
out=$(switchboard hub update chat --max-message-size 65536 --allowed-origin https://app.example.com)
expect "max message size: 65536 bytes" "$out" "hub update"
out=$(curl -H "Authorization: Bearer $SWITCHBOARD_ADMIN_KEY" http://127.0.0.1:$GW_PORT/admin/hubs)
expect '"maxMessageSize":65536' "$out" "GET /admin/hubs"
expect '"allowedOrigins":["https://app.example.com"]' "$out" "GET /admin/hubs"

step "getting-started: the CLI"
out=$(switchboard hub list)
expect "65536" "$out" "hub list"
out=$(switchboard upstream list --hub chat)
expect "fn" "$out" "upstream list"
grep -qF -- "${CHAT_WEBHOOK_SECRET:0:10}…" <<<"$out" || fail "upstream list does not mask the secret:"$'\n'"$out"
grep -qF -- "$CHAT_WEBHOOK_SECRET" <<<"$out" && fail "upstream list shows the secret"
expect "primary" "$(switchboard keys list)" "keys list"
expect "token: eyJ" "$(switchboard token --hub chat --user alice --lifetime 10m)" "token --lifetime"

step "getting-started: the REST API from a shell"
CS="$SWITCHBOARD_CONNECTION_STRING"   # printed at first start
ENDPOINT=$(printf '%s' "$CS" | sed -n 's/.*Endpoint=\([^;]*\).*/\1/p')
KEY=$(printf '%s' "$CS" | sed -n 's/.*AccessKey=\([^;]*\).*/\1/p')
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
rest_token() { # rest_token URL: aud = the request URL, valid one hour
  h=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
  p=$(printf '{"aud":"%s","exp":%d}' "$1" $(($(date +%s) + 3600)) | b64url)
  s=$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -hmac "$KEY" -binary | b64url)
  printf '%s.%s.%s' "$h" "$p" "$s"
}

URL="$ENDPOINT/api/hubs/chat/groups/lobby/:send"
out=$(curl -i -X POST "$URL?api-version=2022-06-01" -H "Authorization: Bearer $(rest_token "$URL")" \
  -H 'Content-Type: application/json' -d '{"target":"newMessage","arguments":["hello"]}')
expect "HTTP/1.1 202" "$out" "REST send to a group"

URL="$ENDPOINT/api/hubs/chat/groups/lobby/connections"
out=$(curl -s "$URL?maxpagesize=50" -H "Authorization: Bearer $(rest_token "$URL")")
expect '{"value":[' "$out" "REST group connections"

step "webhooks: the worked example with openssl"
id='evt_00112233445566778899aabbccddeeff'
ts=1767225600
body='{"hub":"chat","connectionId":"n1.Zm9vYmFy","userId":"alice","event":"message","invocationId":"1","target":"SendMessage","arguments":["hello"]}'
key=$(printf '%s' 'whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=' | cut -c7- | base64 -d | xxd -p -c 64)
out=$(printf '%s' "$id.$ts.$body" | openssl dgst -sha256 -mac HMAC -macopt hexkey:$key -binary | base64)
[ "$out" = "AW3exhoNda6exLl6WgKQ+f2zhpgoF7pc459jcIrRsug=" ] || fail "the worked example's signature is $out"

step "webhooks: secrets, shown and rotated"
[ "$(switchboard upstream secret show fn --hub chat)" = "$CHAT_WEBHOOK_SECRET" ] || fail "secret show"
out=$(switchboard upstream secret rotate fn --hub chat)
expect "new signing secret: whsec_" "$out" "secret rotate"
[ "$(switchboard upstream secret show fn --hub chat | tail -n 1)" = "$CHAT_WEBHOOK_SECRET" ] || fail "the previous secret is not kept"
# The function still knows only the previous secret, which still signs.
out=$(run_client) || fail "client.mjs after the rotation: $out"
expect "alice: hello" "$out" "client after the rotation"

step "webhooks: the delivery log"
out=$(switchboard upstream log fn --hub chat)
expect "message:sendMessage" "$out" "upstream log"
out=$(curl -H "Authorization: Bearer $SWITCHBOARD_ADMIN_KEY" http://127.0.0.1:$GW_PORT/admin/hubs/chat/upstreams/fn/log)
expect '"event":"connect"' "$out" "GET …/log"

step "webhooks: the Node upstream"
# doc: npm ci --prefix examples/functions/node-chat      # installs standardwebhooks
# (make npm, which make test runs first, ran it; running it again here would race the interop tests using that folder)
[ -d examples/functions/node-chat/node_modules/standardwebhooks ] || fail "run make npm"
expect "hub nodechat created" "$(switchboard hub add nodechat)" "hub add nodechat"
export NODE_WEBHOOK_SECRET=$(switchboard upstream secret generate)
(CHAT_WEBHOOK_SECRET="$NODE_WEBHOOK_SECRET" PORT=$NODE_PORT node examples/functions/node-chat/minimal.mjs >"$WORK/minimal.out" 2>&1) &
pids+=($!)
wait_http "http://127.0.0.1:$NODE_PORT/api/webhook" "minimal.mjs"
out=$(switchboard upstream add node --hub nodechat --url http://127.0.0.1:$NODE_PORT/api/webhook --secret "$NODE_WEBHOOK_SECRET" 2>&1)
expect "upstream node registered on hub nodechat" "$out" "upstream add node"
out=$(switchboard token --hub nodechat --user bob)
TOKEN_URL=$(sed -n 's/^url: *//p' <<<"$out")
TOKEN=$(sed -n 's/^token: *//p' <<<"$out")
cat >"$WORK/client/token.mjs" <<'JS'
import * as signalR from "@microsoft/signalr";

const conn = new signalR.HubConnectionBuilder().withUrl(process.env.TOKEN_URL, { accessTokenFactory: () => process.env.TOKEN }).build();
const received = new Promise((resolve) => conn.on("newMessage", (user, text) => resolve(`${user}: ${text}`)));
await conn.start();
console.log(await conn.invoke("sendMessage", "hi"));
console.log(await received);
await conn.invoke("sendMessage", 42).catch((err) => console.log(err.message));
await conn.stop();
JS
out=$(cd "$WORK/client" && TOKEN_URL="$TOKEN_URL" TOKEN="$TOKEN" timeout 60 node token.mjs 2>&1 | grep -v '^\[') || fail "token.mjs: $out"
[ "$out" = $'sent\nbob: hi\ncall sendMessage with one non-empty string' ] || fail "the Node upstream's client printed:"$'\n'"$out"

step "done"
