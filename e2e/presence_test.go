package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/client"
)

type presencePage struct {
	Value []struct {
		ConnectionID string  `json:"connectionId"`
		UserID       *string `json:"userId"`
	} `json:"value"`
	NextLink *string `json:"nextLink"`
}

// walk follows nextLink from path to the end and returns every page; before
// each page after the first it calls between.
func walk(t *testing.T, g *gw, path string, between func()) []presencePage {
	t.Helper()
	var pages []presencePage
	for path != "" {
		if len(pages) > 0 && between != nil {
			between()
		}
		r := g.restWant(http.MethodGet, path, nil, http.StatusOK)
		var p presencePage
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatalf("page %s: %v", r.body, err)
		}
		pages = append(pages, p)
		path = ""
		if p.NextLink != nil {
			if !strings.HasPrefix(*p.NextLink, "/api/hubs/") {
				t.Fatalf("nextLink %q is not a relative URL of the same API", *p.NextLink)
			}
			path = *p.NextLink
		}
		if len(pages) > 1000 {
			t.Fatal("the walk does not end")
		}
	}
	return pages
}

// ids flattens pages into connection id → user id, failing on a duplicate.
func ids(t *testing.T, pages []presencePage) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range pages {
		for _, m := range p.Value {
			if _, dup := out[m.ConnectionID]; dup {
				t.Fatalf("connection %s listed twice in one walk", m.ConnectionID)
			}
			u := "<null>"
			if m.UserID != nil {
				u = *m.UserID
			}
			out[m.ConnectionID] = u
		}
	}
	return out
}

func TestPresenceListings(t *testing.T) {
	g, connect := restRig(t)
	h := "/api/hubs/chat"
	a, a2, b, c := connect("ua"), connect("ua"), connect("ub"), connect("uc")
	for _, p := range []*peer{a, b} {
		g.restWant(http.MethodPut, h+"/groups/room/connections/"+p.id(), nil, http.StatusOK)
	}
	tests := []struct {
		name string
		path string
		want []*peer
	}{
		{"group", h + "/groups/room/connections?api-version=2024-12-01", []*peer{a, b}},
		{"group paged", h + "/groups/room/connections?maxpagesize=1", []*peer{a, b}},
		{"user", h + "/users/ua/connections?maxpagesize=1", []*peer{a, a2}},
		{"hub", h + "/connections?maxpagesize=3", []*peer{a, a2, b, c}},
		{"hub, top 2", h + "/connections?maxpagesize=1&top=2", nil},
		{"empty group", h + "/groups/nobody/connections", nil},
		{"unknown user", h + "/users/nobody/connections", nil},
	}
	users := map[*peer]string{a: "ua", a2: "ua", b: "ub", c: "uc"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pages := walk(t, g, tt.path, nil)
			got := ids(t, pages)
			if tt.name == "hub, top 2" {
				if len(got) != 2 || len(pages) != 2 {
					t.Fatalf("top=2 with pages of 1: got %d connections in %d pages, want 2 in 2", len(got), len(pages))
				}
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %d connections", got, len(tt.want))
			}
			for _, p := range tt.want {
				if got[p.id()] != users[p] {
					t.Errorf("connection %s: user %q, want %q (listing %v)", p.id(), got[p.id()], users[p], got)
				}
			}
			last := pages[len(pages)-1]
			if last.NextLink != nil {
				t.Errorf("last page has nextLink %q", *last.NextLink)
			}
		})
	}

	bad := []string{
		h + "/connections?maxpagesize=0",
		h + "/connections?maxpagesize=lots",
		h + "/connections?top=-1",
		h + "/connections?continuationToken=%21%21",
	}
	for _, path := range bad {
		r := g.restWant(http.MethodGet, path, nil, http.StatusBadRequest)
		if code := r.errorCode(t); code != "Error.InvalidParameter" {
			t.Errorf("GET %s: code %q", path, code)
		}
	}
}

// TestPresencePagingUnderChurn walks a group of 1,000 connections in pages
// of 50 while another goroutine closes some members and opens new ones:
// the walk lists no connection twice and every member that stayed connected
// throughout.
func TestPresencePagingUnderChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1,000 connections")
	}
	g, _ := restRig(t)
	// Every connection of user "crowd" joins "big" as it opens, including
	// those the churn opens during the walk.
	g.restWant(http.MethodPut, "/api/hubs/chat/users/crowd/groups/big", nil, http.StatusOK)

	const n, victims = 1000, 200
	conns := make([]*client.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := atomic.Int64{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				c, err := g.tryDial("chat", "crowd", nil)
				if err != nil {
					errs <- fmt.Errorf("dial %d: %w", i, err)
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// Over 200 asked for means 200 per page.
	var full presencePage
	if err := json.Unmarshal(g.restWant(http.MethodGet, "/api/hubs/chat/groups/big/connections?maxpagesize=1000", nil, http.StatusOK).body, &full); err != nil {
		t.Fatal(err)
	}
	if len(full.Value) != 200 || full.NextLink == nil {
		t.Fatalf("maxpagesize=1000: %d members, nextLink %v; want 200 and a next page", len(full.Value), full.NextLink)
	}

	// The churn closes the first victims members and opens as many new
	// ones, one pair at a time, for as long as the walk runs.
	stayed := map[string]bool{}
	for _, c := range conns[victims:] {
		stayed[c.ConnectionID()] = true
	}
	var steps atomic.Int64
	stop := make(chan struct{})
	churnDone := make(chan error, 1)
	var opened []*client.Conn
	go func() {
		defer close(churnDone)
		for i := 0; i < victims; i++ {
			select {
			case <-stop:
				return
			default:
			}
			conns[i].Close()
			c, err := g.tryDial("chat", "crowd", nil)
			if err != nil {
				churnDone <- err
				return
			}
			opened = append(opened, c)
			steps.Add(1)
		}
	}()
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }) }
	t.Cleanup(func() {
		halt()
		for range churnDone { // wait for the churn before touching opened
		}
		for _, c := range opened {
			c.Close()
		}
	})

	// Before each page, wait (bounded) until the churn has moved on, so
	// membership changes between every two pages.
	between := func() {
		seen := steps.Load()
		deadline := time.Now().Add(waitFor)
		for steps.Load() == seen && steps.Load() < victims && time.Now().Before(deadline) {
			select {
			case <-churnDone:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}
	pages := walk(t, g, "/api/hubs/chat/groups/big/connections?maxpagesize=50", between)
	halt()
	if err := <-churnDone; err != nil {
		t.Fatalf("churn: %v", err)
	}
	if steps.Load() == 0 {
		t.Fatal("no churn happened during the walk")
	}
	for _, p := range pages {
		if len(p.Value) > 50 {
			t.Fatalf("a page of %d members, over maxpagesize 50", len(p.Value))
		}
	}
	got := ids(t, pages)
	missing := 0
	for id := range stayed {
		if _, ok := got[id]; !ok {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d connections open for the whole walk were not listed (walk of %d pages, %d listed, %d churn steps)",
			missing, len(pages), len(got), steps.Load())
	}
	t.Logf("walk: %d pages, %d listed, %d churn steps", len(pages), len(got), steps.Load())
}
