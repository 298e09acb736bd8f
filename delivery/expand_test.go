package delivery

import (
	"testing"

	"github.com/switchboard-gw/switchboard/upstream"
)

func TestExpand(t *testing.T) {
	tests := []struct {
		tpl, want string
	}{
		{"http://fn/api", "http://fn/api"},
		{"http://fn/{hub}/{category}/{event}", "http://fn/chat/messages/Send%20It"},
		{"http://fn/{event}?h={hub}", "http://fn/Send%20It?h=chat"},
		{"http://fn/{hub}{hub}", "http://fn/chatchat"},
		{"http://fn/{other}/{hub}", "http://fn/{other}/chat"},
		{"http://fn/{hub", "http://fn/{hub"},
		{"http://fn/x/{event}/", "http://fn/x/Send%20It/"},
	}
	for _, tt := range tests {
		if got := Expand(tt.tpl, "chat", upstream.CategoryMessages, "Send It"); got != tt.want {
			t.Errorf("Expand(%q) = %q, want %q", tt.tpl, got, tt.want)
		}
	}
	if got := Expand("http://fn/{event}", "h", upstream.CategoryMessages, "a/b"); got != "http://fn/a%2Fb" {
		t.Errorf("a slash in a value must be escaped: got %q", got)
	}
}
