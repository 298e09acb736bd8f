package gateway

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// idleSocket is a Transport whose client sends a handshake and then
// nothing: an idle connection without a socket's buffers.
type idleSocket struct {
	handshake []byte
	sent      bool
	closed    chan struct{}
	once      sync.Once
}

func (s *idleSocket) ReadFrame(ctx context.Context) ([]byte, bool, error) {
	if !s.sent {
		s.sent = true
		return s.handshake, false, nil
	}
	select {
	case <-s.closed:
		return nil, false, ErrClientClosed
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

func (s *idleSocket) WriteFrame(context.Context, []byte, bool) error { return nil }

func (s *idleSocket) Close(int, string) error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

// BenchmarkIdleConnectionMemory measures what the gateway itself holds for
// an idle connection (its Conn, queues, goroutines' stacks), without the
// socket, for each handshake: version 1, and version 2, which makes the
// connection stateful (stateful.go), and for version 1 with a user id per
// connection (the users' index in hub.go). Each iteration opens one connection;
// B/conn is the heap and stack in use after a GC, divided by the
// connections. Run it with a fixed count so both cases hold as many:
//
//	go test -run - -bench IdleConnectionMemory -benchtime 10000x ./gateway/
func BenchmarkIdleConnectionMemory(b *testing.B) {
	for _, tc := range []struct {
		name, handshake string
		user            bool
	}{
		{"plain", `{"protocol":"json","version":1}` + "\x1e", false},
		{"stateful", `{"protocol":"json","version":2}` + "\x1e", false},
		{"user", `{"protocol":"json","version":1}` + "\x1e", true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			g := New(Config{SweepInterval: -1, Logger: quiet})
			inUse := func() uint64 {
				runtime.GC()
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				return m.HeapInuse + m.StackInuse
			}
			var sockets []*idleSocket
			var tokens []string
			var served sync.WaitGroup
			defer func() {
				// Shut down first: a stateful connection whose socket
				// closes without a Close message waits to be resumed.
				g.Shutdown(context.Background())
				for _, s := range sockets {
					s.Close(0, "")
				}
				served.Wait()
			}()
			before := inUse()
			for b.Loop() {
				var id Identity
				if tc.user {
					id.UserID = "user-" + strconv.Itoa(len(sockets))
				}
				_, tok, err := g.Negotiate("bench", id)
				if err != nil {
					b.Fatal(err)
				}
				s := &idleSocket{handshake: []byte(tc.handshake), closed: make(chan struct{})}
				sockets = append(sockets, s)
				tokens = append(tokens, tok)
				served.Add(1)
				go func() {
					defer served.Done()
					g.Serve(context.Background(), tok, s, ConnectInfo{})
				}()
			}
			b.StopTimer()
			deadline := time.Now().Add(time.Minute)
			for g.hub("bench").count() < len(sockets) {
				if time.Now().After(deadline) {
					b.Fatalf("%d of %d connections up", g.hub("bench").count(), len(sockets))
				}
				time.Sleep(10 * time.Millisecond)
			}
			after := inUse()
			b.ReportMetric(float64(after-before)/float64(len(sockets)), "B/conn")
			// The version asked for made the connections stateful or not.
			if stateful := g.Resumable(tokens[0]); stateful != (tc.name == "stateful") {
				b.Fatalf("%s handshake: stateful %v", tc.name, stateful)
			}
		})
	}
}
