package main

import (
	"strings"
	"testing"
)

// TestConfigCheckOIDCPolicy: `config check` loads the policy a settings
// file names, so a bad one is found before the node starts; a good one
// passes.
func TestConfigCheckOIDCPolicy(t *testing.T) {
	t.Parallel()
	good := writeFile(t, "oidc.yaml", "issuers:\n  - issuer: https://idp.example.com\n    audiences: [switchboard]\n    grants:\n      - subject: app\n        hubs: [chat]\n        operations: [send]\n")
	bad := writeFile(t, "bad.yaml", "issuers:\n  - issuer: https://idp.example.com\n    audiences: [switchboard]\n    grants:\n      - subject: app\n        hubs: [chat]\n        operations: [admin]\n")
	if out, errOut, err := sb(t, nil, "config", "check", writeFile(t, "good.yaml", "oidc-policy: "+good+"\n")); err != nil {
		t.Fatalf("good policy: %v %s %s", err, out, errOut)
	}
	_, errOut, err := sb(t, nil, "config", "check", writeFile(t, "sb.yaml", "oidc-policy: "+bad+"\n"))
	if err == nil || !strings.Contains(errOut, "oidc-policy") || !strings.Contains(errOut, `hubs is ["*"]`) {
		t.Errorf("bad policy: %v %q; want the key and the fault named", err, errOut)
	}
}
