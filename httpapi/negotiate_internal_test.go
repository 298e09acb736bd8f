package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/switchboard-gw/switchboard/store"
)

// TestNegotiateResponseBytes: the hand-built answer is byte for byte what
// echo's c.JSON (an encoding/json Encoder) writes, for the ids the gateway
// makes and for strings that need escaping.
func TestNegotiateResponseBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		resp negotiateResponse
	}{
		{"gateway ids", negotiateResponse{NegotiateVersion: 1, ConnectionID: "n1.AbC-_12", ConnectionToken: "n1.xyz_-AB0", AvailableTransports: allTransports}},
		{"stateful", negotiateResponse{NegotiateVersion: 1, ConnectionID: "a", ConnectionToken: "b", AvailableTransports: allTransports, UseStatefulReconnect: true}},
		{"some transports", negotiateResponse{NegotiateVersion: 1, ConnectionID: "a", ConnectionToken: "b",
			AvailableTransports: hubTransports(store.Hub{Transports: []string{"longpolling", "WebSockets"}})}},
		{"no transports", negotiateResponse{NegotiateVersion: 1, ConnectionID: "a", ConnectionToken: "b", AvailableTransports: []transport{}}},
		{"escapes", negotiateResponse{NegotiateVersion: 1, ConnectionID: "<a&b>\"\\", ConnectionToken: "\x00\t\u2028é\xff", AvailableTransports: allTransports}},
		{"empty", negotiateResponse{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want bytes.Buffer
			if err := json.NewEncoder(&want).Encode(tt.resp); err != nil {
				t.Fatal(err)
			}
			if got := appendNegotiateResponse(nil, tt.resp); !bytes.Equal(got, want.Bytes()) {
				t.Errorf("got  %s\nwant %s", got, want.Bytes())
			}
		})
	}
}
