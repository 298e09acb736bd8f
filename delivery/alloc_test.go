package delivery

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/upstream"
)

// rawUpstream is an HTTP/1.1 server on loopback that answers every request
// with the same bytes without allocating per request, so that an
// allocation count of a call measures the gateway's side alone (a
// net/http server in the same process would add its own). It reads each
// request whole (headers, then Content-Length bytes of body) before
// answering, keeps connections alive, and checks nothing else: the
// request's contents are tested where the contract is.
func rawUpstream(t testing.TB, answer string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveRaw(c, []byte(answer))
		}
	}()
	return "http://" + ln.Addr().String()
}

func serveRaw(c net.Conn, answer []byte) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 16<<10)
	prefix := []byte("content-length:")
	for {
		length := -1
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 { // the blank line ending the headers
				break
			}
			if len(line) > len(prefix) && bytes.EqualFold(line[:len(prefix)], prefix) {
				if n, err := strconv.Atoi(string(bytes.TrimSpace(line[len(prefix):]))); err == nil {
					length = n
				}
			}
		}
		if length < 0 {
			return // the dispatcher always sends a length
		}
		if _, err := r.Discard(length); err != nil {
			return
		}
		if _, err := c.Write(answer); err != nil {
			return
		}
	}
}

// invocationReply is a typical answer to a message event: a result.
const invocationReply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 22\r\n\r\n{\"result\":\"delivered\"}"

// newCallRig is a dispatcher with one upstream at url for hub h, taking
// message events for every target.
func newCallRig(t testing.TB, url string) *Dispatcher {
	d, err := NewDispatcher(DispatcherConfig{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	f, err := ParseFilter([]string{"message:*"})
	if err != nil {
		t.Fatal(err)
	}
	d.SetTargets([]Target{{Hub: "h", Name: "fn", URLTemplate: url + "/api/{hub}/{category}/{event}", Filter: f,
		Secrets: []string{upstream.NewSecret()}}})
	return d
}

func messageEvent() *upstream.Event {
	user, id := "alice", "7"
	return &upstream.Event{Event: upstream.EventMessage, Hub: "h", ConnectionID: "n1.conn", UserID: &user,
		InvocationID: &id, Target: "sendMessage", Arguments: []byte(`["hello",1732900000000]`)}
}

// TestCallAllocations pins what one blocking call costs the gateway in
// allocations: prepare, encode, sign, POST over a kept-alive connection,
// read and parse the reply. With Go 1.26 it was 101 before issue 12, 36
// once webhooks went out through fasthttp, and is 18 since a call has a
// deadline instead of a context of its own, its headers are a list on the
// stack, the reply's body is read in place, the usual JSON Content-Types
// skip mime.ParseMediaType and a reply holding only a result skips
// json.Unmarshal (docs/benchmarks.md says what each step removed). A
// change that adds allocations to every invocation fails here; one that
// removes some lowers the pin.
func TestCallAllocations(t *testing.T) {
	if testutil.Race {
		t.Skip("the race detector changes allocation counts (sync.Pool drops items)")
	}
	d := newCallRig(t, rawUpstream(t, invocationReply))
	ev := messageEvent()
	// A context that can end, as the gateway's calls have (its connection's
	// invocations): a call watches it to end early.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	call := func() {
		reply, err := d.Call(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		if reply == nil || string(reply.Result) != `"delivered"` {
			t.Fatalf("reply %+v, want the result \"delivered\"", reply)
		}
	}
	call() // dials and fills the pools
	const pinned = 18
	if got := testing.AllocsPerRun(500, call); got > pinned {
		t.Errorf("a call allocates %v times; pinned at %d", got, pinned)
	} else if got < pinned-5 {
		t.Logf("a call allocates %v times, well under the pin of %d: lower it", got, pinned)
	}
}

func BenchmarkCall(b *testing.B) {
	d := newCallRig(b, rawUpstream(b, invocationReply))
	ev := messageEvent()
	ctx, cancel := context.WithCancel(context.Background()) // as in TestCallAllocations
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Call(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
}
