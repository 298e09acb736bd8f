package testutil

import (
	"net"
	"strconv"
	"testing"
)

// TestFreePort: the ports are free, different, and below the kernel's
// ephemeral range, where no port-0 bind or outgoing connection lands.
func TestFreePort(t *testing.T) {
	_, ephemeralStart := requestablePorts()
	seen := map[int]bool{}
	for range 20 {
		p := FreePort(t)
		if p >= ephemeralStart || p < 1024 {
			t.Errorf("port %d outside [1024, %d)", p, ephemeralStart)
		}
		if seen[p] {
			t.Errorf("port %d handed out twice", p)
		}
		seen[p] = true
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d: %v", p, err)
		}
		ln.Close()
	}
}
