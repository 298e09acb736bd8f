package store

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/internal/testutil"
)

func groupNames(ms []UserGroup) []string {
	var names []string
	for _, m := range ms {
		names = append(names, m.Hub+"/"+m.User+"/"+m.Group)
	}
	return names
}

func TestUserGroups(t *testing.T) {
	t.Parallel()
	db, _ := openTemp(t)
	add := func(hub, user, group string) {
		t.Helper()
		if err := db.AddUserToGroup(t.Context(), UserGroup{Hub: hub, User: user, Group: group}); err != nil {
			t.Fatal(err)
		}
	}
	add("chat", "u", "zeta")
	add("chat", "u", "alpha")
	add("chat", "u", "alpha") // upsert, not a second row
	// Users whose ids extend "u" or hold a NUL must not leak into u's list.
	add("chat", "uu", "x")
	add("chat", "u\x00", "y")
	add("other", "u", "z")

	tests := []struct {
		name       string
		hub, user  string
		wantGroups []string
	}{
		{name: "sorted by group", hub: "chat", user: "u", wantGroups: []string{"chat/u/alpha", "chat/u/zeta"}},
		{name: "longer user id", hub: "chat", user: "uu", wantGroups: []string{"chat/uu/x"}},
		{name: "user id with NUL", hub: "chat", user: "u\x00", wantGroups: []string{"chat/u\x00/y"}},
		{name: "other hub", hub: "other", user: "u", wantGroups: []string{"other/u/z"}},
		{name: "unknown user", hub: "chat", user: "nobody"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.UserGroups(t.Context(), tt.hub, tt.user)
			if err != nil || !slices.Equal(groupNames(got), tt.wantGroups) {
				t.Errorf("UserGroups(%q, %q): got %q %v, want %q", tt.hub, tt.user, groupNames(got), err, tt.wantGroups)
			}
		})
	}

	if err := db.RemoveUserFromGroup(t.Context(), "chat", "u", "zeta"); err != nil {
		t.Fatal(err)
	}
	if err := db.RemoveUserFromGroup(t.Context(), "chat", "u", "never-joined"); err != nil {
		t.Errorf("RemoveUserFromGroup of an absent membership: got %v, want nil", err)
	}
	if got, _ := db.UserGroups(t.Context(), "chat", "u"); !slices.Equal(groupNames(got), []string{"chat/u/alpha"}) {
		t.Errorf("after RemoveUserFromGroup: got %q", groupNames(got))
	}
	add("chat", "u", "beta")
	if err := db.RemoveUserFromAllGroups(t.Context(), "chat", "u"); err != nil {
		t.Fatal(err)
	}
	all, err := db.AllUserGroups(t.Context())
	if want := []string{"chat/u\x00/y", "chat/uu/x", "other/u/z"}; err != nil || !slices.Equal(groupNames(all), want) {
		t.Errorf("AllUserGroups after RemoveUserFromAllGroups: got %q %v, want %q", groupNames(all), err, want)
	}

	for _, m := range []UserGroup{{User: "u", Group: "g"}, {Hub: "chat", Group: "g"}, {Hub: "chat", User: "u"}} {
		if err := db.AddUserToGroup(t.Context(), m); !errors.Is(err, ErrInvalid) {
			t.Errorf("AddUserToGroup(%+v): got %v, want ErrInvalid", m, err)
		}
	}
}

func TestUserGroupExpiry(t *testing.T) {
	t.Parallel()
	clk := testutil.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	db, _ := openTemp(t, WithClock(clk.Now))
	start := clk.Now()
	for _, m := range []UserGroup{
		{Hub: "chat", User: "u", Group: "forever"},
		{Hub: "chat", User: "u", Group: "minute", ExpiresAt: start.Add(time.Minute)},
		{Hub: "chat", User: "v", Group: "hour", ExpiresAt: start.Add(time.Hour)},
		{Hub: "chat", User: "v", Group: "renewed", ExpiresAt: start.Add(time.Second)},
	} {
		if err := db.AddUserToGroup(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	// Upsert replaces the expiry.
	if err := db.AddUserToGroup(t.Context(), UserGroup{Hub: "chat", User: "v", Group: "renewed", ExpiresAt: start.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name    string
		advance time.Duration
		want    []string
	}{
		{name: "at start", want: []string{"chat/u/forever", "chat/u/minute", "chat/v/hour", "chat/v/renewed"}},
		{name: "just before a minute", advance: time.Minute - time.Nanosecond, want: []string{"chat/u/forever", "chat/u/minute", "chat/v/hour", "chat/v/renewed"}},
		{name: "at a minute", advance: time.Nanosecond, want: []string{"chat/u/forever", "chat/v/hour", "chat/v/renewed"}},
		{name: "after an hour", advance: time.Hour, want: []string{"chat/u/forever", "chat/v/renewed"}},
		{name: "after three hours", advance: 2 * time.Hour, want: []string{"chat/u/forever"}},
	}
	for _, st := range steps {
		clk.Advance(st.advance)
		all, err := db.AllUserGroups(t.Context())
		if err != nil || !slices.Equal(groupNames(all), st.want) {
			t.Errorf("%s: AllUserGroups got %q %v, want %q", st.name, groupNames(all), err, st.want)
		}
		var perUser []string
		for _, u := range []string{"u", "v"} {
			ms, err := db.UserGroups(t.Context(), "chat", u)
			if err != nil {
				t.Fatal(err)
			}
			perUser = append(perUser, groupNames(ms)...)
		}
		if !slices.Equal(perUser, st.want) {
			t.Errorf("%s: UserGroups got %q, want %q", st.name, perUser, st.want)
		}
	}
}

func TestPurgeExpiredUserGroups(t *testing.T) {
	t.Parallel()
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	// The DB's clock reads before every expiry, so AllUserGroups shows what
	// the purges (which take their own now) left behind.
	db, _ := openTemp(t, WithClock(func() time.Time { return start.Add(-time.Hour) }))
	for i, exp := range []time.Time{{}, start.Add(time.Minute), start.Add(time.Hour), start.Add(2 * time.Hour)} {
		m := UserGroup{Hub: "chat", User: "u", Group: string(rune('a' + i)), ExpiresAt: exp}
		if err := db.AddUserToGroup(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		now  time.Time
		want int
	}{
		{name: "nothing expired", now: start, want: 0},
		{name: "one expired", now: start.Add(time.Minute), want: 1},
		{name: "already purged", now: start.Add(time.Minute), want: 0},
		{name: "two more", now: start.Add(3 * time.Hour), want: 2},
	}
	for _, tt := range tests {
		n, err := db.PurgeExpiredUserGroups(t.Context(), tt.now)
		if err != nil || n != tt.want {
			t.Errorf("%s: PurgeExpiredUserGroups got %d %v, want %d", tt.name, n, err, tt.want)
		}
	}
	if all, err := db.AllUserGroups(t.Context()); err != nil || !slices.Equal(groupNames(all), []string{"chat/u/a"}) {
		t.Errorf("after purges: got %q %v, want [chat/u/a]", groupNames(all), err)
	}
}
