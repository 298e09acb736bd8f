package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/node"
)

// httpTimeouts sets the node's HTTP timeouts (the rest keep their
// defaults) so a test sees them act; every wait of the tests is bounded by
// waitFor, against hangs only. Each test shortens only the timeout it is
// about: a short header timeout would let a loaded machine cut a request
// before its headers are read, for the wrong reason.
func httpTimeouts(t node.HTTPTimeouts) nodeOption {
	return func(c *node.Config) { c.HTTP = t }
}

// rawConn dials the node's listener.
func rawConn(t *testing.T, g *gw) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", g.node.Addr().String(), waitFor)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// closedByServer reads conn until the server closes it and fails the test
// if that takes longer than waitFor. It returns what was read.
func closedByServer(t *testing.T, conn net.Conn, what string) string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(waitFor)); err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(conn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: the server kept the connection open for %s (read so far: %q)", what, waitFor, data)
	}
	return string(data)
}

// TestSlowBodyIsCut: a client that sends its headers and then trickles (here:
// stops sending) its body is cut off, instead of holding a connection and a
// handler for as long as it likes.
func TestSlowBodyIsCut(t *testing.T) {
	t.Parallel()
	g := startNode(t, httpTimeouts(node.HTTPTimeouts{Read: 500 * time.Millisecond}))
	conn := rawConn(t, g)
	fmt.Fprintf(conn, "POST /admin/hubs HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\":", g.node.Addr(), g.node.AdminKey())
	closedByServer(t, conn, "a body that never ends")
}

// TestIdleKeepAliveIsClosed: a keep-alive connection that sends no further
// request is closed by the server.
func TestIdleKeepAliveIsClosed(t *testing.T) {
	t.Parallel()
	g := startNode(t, httpTimeouts(node.HTTPTimeouts{Idle: 500 * time.Millisecond}))
	conn := rawConn(t, g)
	fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", g.node.Addr())
	if err := conn.SetReadDeadline(time.Now().Add(waitFor)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("healthz: %d, close %v, %v; want 200 on a kept-alive connection", resp.StatusCode, resp.Close, err)
	}
	_, err = br.ReadByte()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("an idle keep-alive connection stayed open for %s", waitFor)
	}
	if !errors.Is(err, io.EOF) {
		t.Fatalf("idle keep-alive: read %v, want the server to close it (EOF)", err)
	}
}

// TestSocketOutlivesHTTPTimeouts: the HTTP timeouts end requests, never an
// upgraded WebSocket: a client silent for many times their length, kept up
// by the protocol's pings alone, still works.
func TestSocketOutlivesHTTPTimeouts(t *testing.T) {
	t.Parallel()
	const short = 1500 * time.Millisecond // long enough for negotiate to answer on a loaded machine
	g := startNode(t, httpTimeouts(node.HTTPTimeouts{Read: short, Write: short, Idle: short}),
		func(c *node.Config) { c.PingInterval = 100 * time.Millisecond })
	g.createHub("chat", true)
	c := g.dial("chat", "", nil)
	// Wall-clock time, the one thing net/http's deadlines know: the socket
	// must outlive read, write and idle timeouts several times over. A slow
	// machine only makes the wait longer, never the test wrong.
	time.Sleep(3 * short)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err := c.Invoke(ctx, "anything")
	if err == nil || !strings.Contains(err.Error(), "no upstream") {
		t.Fatalf("invoke after the HTTP timeouts passed: %v; want the gateway's completion error (no upstream), proving the socket is up", err)
	}
}

// TestNoHandshakeClosesWithProtocolError: a socket that sends nothing after
// the upgrade is closed, when the handshake timeout passes, with the close
// frame the gateway means (1002, "no handshake"), not dropped (1006).
func TestNoHandshakeClosesWithProtocolError(t *testing.T) {
	t.Parallel()
	g := startNode(t, func(c *node.Config) { c.HandshakeTimeout = 200 * time.Millisecond })
	g.createHub("chat", true)
	status, body := do(t, http.MethodPost, g.url+"/client/negotiate?hub=chat&negotiateVersion=1", "", nil)
	var neg struct {
		ConnectionToken string `json:"connectionToken"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &neg) != nil {
		t.Fatalf("negotiate: %d %s", status, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(g.url, "http")+"/client/?hub=chat&id="+neg.ConnectionToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	_, _, err = ws.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusProtocolError || ce.Reason != "no handshake" {
		t.Fatalf("silent socket ended with %v; want close status 1002 \"no handshake\"", err)
	}
}

// TestOversizedRequestHeadIsRefused: a request's line and headers arrive
// before anything is checked, and whatever parses them may keep slices of
// them. Past node.MaxHeaderBytes the node answers 431 and reads no further;
// a request just under it is served as usual.
func TestOversizedRequestHeadIsRefused(t *testing.T) {
	t.Parallel()
	g := startNode(t)
	g.createHub("open", true)
	post := func(pad int) int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.url+"/client/negotiate?hub=open&pad="+strings.Repeat("p", pad), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(node.MaxHeaderBytes / 2); got != http.StatusOK {
		t.Errorf("negotiate with a %d KiB query: %d, want 200", node.MaxHeaderBytes/2>>10, got)
	}
	if got := post(2 * node.MaxHeaderBytes); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("negotiate with a %d KiB query: %d, want 431", 2*node.MaxHeaderBytes>>10, got)
	}
}
