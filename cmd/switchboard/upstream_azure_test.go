package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestCLIAzureUpstream registers an azure-signalr upstream with the CLI:
// no registration check (Azure's handlers do not answer it), no signing
// secret of its own, its rules in the list; and the mistakes an admin may
// make are refused saying why.
func TestCLIAzureUpstream(t *testing.T) {
	t.Parallel()
	n := startTestNode(t)
	run, fails := cliOn(t, n)
	run("hub", "add", "chat")
	// Nothing listens there: an azure-signalr upstream is saved without
	// the OPTIONS check.
	fn := closedURL(t) + "/runtime/webhooks/signalr"
	out, _ := run("upstream", "add", "functions", "--hub", "chat", "--url", fn, "--profile", "azure-signalr",
		"--category-pattern", "connections,messages", "--event-pattern", "connected, disconnected, broadcast")
	if !strings.Contains(out, "upstream functions registered on hub chat") || !strings.Contains(out, "signed with the access keys") {
		t.Errorf("upstream add printed %q", out)
	}
	out, _ = run("upstream", "list", "--hub", "chat")
	if !regexp.MustCompile(`(?m)^1\s+functions\s+\S+\s+azure-signalr hub=\* category=connections,messages event=connected, disconnected, broadcast\s`).MatchString(out) {
		t.Errorf("upstream list = %q", out)
	}
	fails("unknown profile", "upstream", "add", "x", "--hub", "chat", "--url", fn, "--profile", "aws")
	fails("events: an \"azure-signalr\" upstream chooses its events with hubPattern", "upstream", "add", "x", "--hub", "chat", "--url", fn,
		"--profile", "azure-signalr", "--events", "connect")
	fails("secrets: an \"azure-signalr\" upstream is signed with the access keys", "upstream", "add", "x", "--hub", "chat", "--url", fn,
		"--profile", "azure-signalr", "--secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	fails("belong to the \"azure-signalr\" profile", "upstream", "add", "x", "--hub", "chat", "--url", fn, "--event-pattern", "connected", "--skip-validation")
	fails("unknown category \"users\"", "upstream", "add", "x", "--hub", "chat", "--url", fn, "--profile", "azure-signalr", "--category-pattern", "users")
	fails("no empty entries", "upstream", "add", "x", "--hub", "chat", "--url", fn, "--profile", "azure-signalr", "--event-pattern", "a,,b")
}
