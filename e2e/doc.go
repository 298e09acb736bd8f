// Package e2e holds the end-to-end tests: a real node (store, gateway,
// dispatcher, HTTP API) on 127.0.0.1, real upstream HTTP servers, the Go
// SignalR client and, in interop_test.go, the official @microsoft/signalr
// client driven by Node. The package has no non-test code.
package e2e
