package gateway

import "testing"

func TestCloseKind(t *testing.T) {
	tests := []struct {
		name   string
		code   int
		reason string
		want   CloseKind
	}{
		{"client", CloseNormal, ReasonClientClosed, CloseKindClient},
		{"timeout", CloseNormal, "timeout: no message from the client for 30s", CloseKindTimeout},
		{"closeConnection", CloseNormal, "kicked by the app", CloseKindServer},
		{"shutdown", CloseGoingAway, ReasonShutdown, CloseKindShutdown},
		{"resume window", CloseGoingAway, "not resumed within 30s", CloseKindResumeTimeout},
		{"protocol", CloseProtocolError, "invalid message", CloseKindProtocol},
		{"binary on json", CloseUnsupportedData, "binary frame", CloseKindProtocol},
		{"rate", ClosePolicyViolation, "too fast", CloseKindPolicy},
		{"too big", CloseMessageTooBig, "message exceeds the hub's size limit", CloseKindTooBig},
		{"lost", CloseInternalError, "connection lost: EOF", CloseKindLost},
		{"slow", CloseTryAgainLater, ReasonSlowConsumer, CloseKindSlowConsumer},
		{"resume buffer", CloseTryAgainLater, ReasonResumeBufferFull, CloseKindResumeBuffer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := closeKind(tt.code, tt.reason); got != tt.want {
				t.Errorf("closeKind(%d, %q) = %s, want %s", tt.code, tt.reason, got, tt.want)
			}
		})
	}
}
