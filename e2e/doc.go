// Package e2e holds the end-to-end tests: a real node (store, gateway,
// dispatcher, HTTP API) on 127.0.0.1, real upstream HTTP servers, the Go
// SignalR client and, in interop_test.go, the official @microsoft/signalr
// client driven by Node. tour_test.go runs scripts/tour.sh, the commands of
// README.md, docs/getting-started.md and docs/webhooks.md with the real
// binary, and checks that those docs hold no command or snippet the tour
// and the examples do not run. dashboard_browser_test.go drives the admin
// dashboard in headless Chromium (chromedp). The package has no non-test
// code.
package e2e
