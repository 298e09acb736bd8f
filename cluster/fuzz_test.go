package cluster

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeEnvelope feeds the decoder what any client of the NATS server
// could publish on a bus subject: it must never panic, and whatever it
// accepts must be an envelope a node can act on and send on unchanged.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `"op"`, `{"v":1}`,
		`{"v":1,"kind":"op","node":"n1","op":{"hub":"h","action":{"action":"broadcast","target":"t","arguments":[1,"a"]}}}`,
		`{"v":1,"kind":"op","node":"n1","op":{"hub":"h","action":{"action":"sendToGroup","group":"g","target":"t","excluded":["n1.a"]}}}`,
		`{"v":1,"kind":"op","node":"n1","op":{"hub":"h","action":{"action":"addUserToGroup","user":"u","group":"g","ttl":5}}}`,
		`{"v":1,"kind":"op","node":"n1","op":{"hub":"h","close":{"scope":{"Group":"g"},"excluded":["x"],"reason":"r"}}}`,
		`{"v":1,"kind":"op","node":"n1","op":{"hub":"h","leaveAll":{"user":"u"}}}`,
		`{"v":1,"kind":"op","node":"n1","op":{"hub":"h","leaveAll":{"connectionId":"n2.x"}}}`,
		`{"v":1,"kind":"query","node":"n1","query":{"hub":"h","kind":"list","scope":{"User":"u"},"after":"a","limit":3}}`,
		`{"v":1,"kind":"reply","node":"n2","answer":{"found":true,"conns":[{"ConnectionID":"n2.x","UserID":"u"}],"more":true}}`,
		`{"v":1,"kind":"reply","node":"n2","err":"gateway: connection not found","code":"noConnection"}`,
		`{"v":1,"kind":"hb","node":"n2","url":"http://x","conns":4}`,
		`{"v":1,"kind":"bye","node":"n2"}`,
		`{"v":2,"kind":"op","node":"n1"}`,
		`{"v":1,"kind":"op","node":"n1","op":{"hub":"h","action":{"action":"broadcast","target":"t","arguments":{}}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := decodeEnvelope(data)
		if err != nil {
			return
		}
		if env.V != wireVersion || env.Node == "" {
			t.Fatalf("accepted %q with version %d, node %q", data, env.V, env.Node)
		}
		if env.Op != nil && env.Kind == kindOp {
			_ = opSubject(env.Op)
		}
		again, err := json.Marshal(env)
		if err != nil {
			t.Fatalf("re-encode %q: %v", data, err)
		}
		if _, err := decodeEnvelope(again); err != nil {
			t.Fatalf("accepted %q but not its re-encoding %q: %v", data, again, err)
		}
	})
}
