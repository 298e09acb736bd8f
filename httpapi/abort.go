package httpapi

// Abort drops the socket at once, from any goroutine: a write blocked on a
// client that reads nothing fails. It makes the WebSocket a
// gateway.Aborter, whose writes the gateway's sweep bounds.
func (t *wsTransport) Abort() { _ = t.ws.CloseNow() }
