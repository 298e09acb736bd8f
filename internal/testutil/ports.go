package testutil

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on, for a
// server the test starts later that must be told its port in advance (a
// process of its own, a cluster whose members name each other's ports).
//
// The port comes from below the kernel's ephemeral range. A port found by
// binding port 0 and closing comes from that range, and until the server
// binds it again the kernel may give it to any outgoing connection as its
// source port (tests running beside this one open thousands); the
// server's bind then fails with "address already in use". The kernel hands
// out ports below the range only to those who ask for them by number.
// Within this process no port is handed out twice.
func FreePort(t testing.TB) int {
	t.Helper()
	lo, hi := requestablePorts()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		p := lo + rand.IntN(hi-lo)
		if handedOut[p] {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue // taken
		}
		ln.Close()
		handedOut[p] = true
		return p
	}
	t.Fatalf("testutil: no free port in %d-%d", lo, hi-1)
	return 0
}

// FreeAddr is FreePort as an address, 127.0.0.1:PORT.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}

var (
	portsMu   sync.Mutex
	handedOut = map[int]bool{}
)

// requestablePorts is the range FreePort picks from, [lo, hi): from 10000
// up to where the ephemeral range starts (Linux says where; 32768 is its
// default, and below IANA's 49152 elsewhere).
func requestablePorts() (lo, hi int) {
	lo, hi = 10000, 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if start, err := strconv.Atoi(f[0]); err == nil && start > 2048 {
				hi = start
				lo = min(lo, hi/2)
			}
		}
	}
	return lo, hi
}
