package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func FuzzParseReply(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `"x"`, `{"result":1}`, `{"error":"e"}`,
		`{"userId":"u","groups":["a","b"]}`,
		`{"actions":[{"action":"broadcast","target":"t","arguments":[1,"a",null]}]}`,
		`{"actions":[{"action":"addUserToGroup","user":"u","group":"g","ttl":-1}]}`,
		`{"actions":[{"action":"explode"},1,null]}`,
		`{"actions":[{"action":"sendToGroup","group":"g","target":"t","arguments":" [1]"}]}`,
	} {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, callerKnown bool) {
		r, err := ParseReply(body, callerKnown)
		if err != nil {
			if r != nil {
				t.Fatalf("reply %+v returned with error %v", r, err)
			}
			if !errors.Is(err, ErrBadReply) {
				t.Fatalf("error %v does not wrap ErrBadReply", err)
			}
			return
		}
		if r == nil {
			return
		}
		for i, a := range r.Actions {
			if err := a.Validate(callerKnown); err != nil {
				t.Fatalf("accepted actions[%d] fails Validate: %v", i, err)
			}
		}
		// An accepted reply survives re-encoding unchanged.
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("re-encoding accepted reply: %v", err)
		}
		r2, err := ParseReply(b, callerKnown)
		if err != nil {
			t.Fatalf("re-parsing %s: %v", b, err)
		}
		b2, _ := json.Marshal(r2)
		if string(b) != string(b2) {
			t.Fatalf("round trip changed reply: %s then %s", b, b2)
		}
	})
}

// FuzzVerify feeds arbitrary signature headers, ids, timestamps and bodies to
// Verify. It must never panic, never accept a header that lacks the right
// secret's signature, and always accept a genuine signature however much junk
// surrounds it.
func FuzzVerify(f *testing.F) {
	right := "whsec_" + strings.Repeat("A", 43) + "="
	wrong := "whsec_" + strings.Repeat("B", 43) + "="
	now := time.Unix(1767225600, 0)
	f.Add("v1,abc", "evt_1", "1767225600", []byte(`{}`))
	f.Add("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v2,xx", "msg", "1767225600", []byte(`{"a":1}`))
	f.Add("v1, v1,,v1", "", "-1", []byte{})
	f.Add("v1,====", "id", "99999999999999999999", []byte("x"))
	f.Add(" \t v1,AAAA\n", "i d", "1767225900", []byte("x"))
	f.Fuzz(func(t *testing.T, sig, id, ts string, body []byte) {
		err := Verify([]string{right}, id, ts, sig, body, now)
		if err == nil {
			// Only possible if the header really holds right's signature.
			n, perr := strconv.ParseInt(ts, 10, 64)
			if perr != nil {
				t.Fatalf("accepted non-numeric timestamp %q", ts)
			}
			want, _ := Sign([]string{right}, id, time.Unix(n, 0), body)
			if !containsField(sig, want) {
				t.Fatalf("accepted %q without the signature %q", sig, want)
			}
		}
		n, perr := strconv.ParseInt(ts, 10, 64)
		if perr != nil || id == "" {
			return
		}
		genuine, _ := Sign([]string{right}, id, time.Unix(n, 0), body)
		header := sig + " " + genuine + " " + sig
		err = Verify([]string{wrong}, id, ts, header, body, now)
		if err == nil {
			t.Fatalf("wrong secret accepted %q", header)
		}
		d := now.Sub(time.Unix(n, 0))
		inWindow := d <= MaxClockSkew && d >= -MaxClockSkew
		if err := Verify([]string{wrong, right}, id, ts, header, body, now); (err == nil) != inWindow {
			t.Fatalf("genuine signature among junk: err = %v, in window: %v", err, inWindow)
		}
	})
}

func containsField(header, entry string) bool {
	for _, f := range strings.Fields(header) {
		if f == entry {
			return true
		}
	}
	return false
}

// FuzzDecodeEvent checks that an event body, however odd, never panics the
// decoder and that what it accepts carries the identity every Func relies on.
func FuzzDecodeEvent(f *testing.F) {
	for _, s := range []string{
		`{"hub":"chat","connectionId":"c1","userId":null,"event":"connect","claims":{},"query":{"a":["b"]}}`,
		`{"hub":"chat","connectionId":"c1","event":"message","target":"T","arguments":[1]}`,
		`{"hub":"chat","connectionId":"c1","event":"message","target":"T","arguments":null}`,
		`{"hub":"chat","connectionId":"c1","event":"disconnected","reason":"x"}`,
		`{"event":"message"}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := decodeEvent(body)
		if err != nil {
			if !errors.Is(err, ErrMalformedEvent) {
				t.Fatalf("error %v does not wrap ErrMalformedEvent", err)
			}
			return
		}
		if ev.Hub == "" || ev.ConnectionID == "" {
			t.Fatalf("accepted event without identity: %+v", ev)
		}
		switch ev.Event {
		case EventConnect, EventConnected, EventDisconnected:
		case EventMessage:
			if ev.Target == "" {
				t.Fatalf("accepted message without target: %+v", ev)
			}
		default:
			t.Fatalf("accepted unknown event %q", ev.Event)
		}
		var again Event
		if err := json.Unmarshal(body, &again); err != nil || !reflect.DeepEqual(&again, ev) {
			t.Fatalf("decodeEvent disagrees with json.Unmarshal: %v", err)
		}
	})
}

// FuzzOnlyResult holds ParseReply's shortcut for {"result":VALUE} to the
// general path: wherever it answers, parseObject accepts the same body
// with the same Result and nothing else.
func FuzzOnlyResult(f *testing.F) {
	for _, s := range []string{
		`{"result":1}`, `{"result": "x" }`, `{"result":null}`, `{"result":[1, {"a":2}] }`,
		`{"result":1,"error":"e"}`, `{"result":{"a":1},"b":{}}`, `{"result":}`, `{"result":1}}`,
		`{"result":"\u00e9\ud800"}`, "{\"result\":\"\xff\"}", `{"result":{"result":1}}`,
		"{\"result\":0\v}", // \v is whitespace to bytes.TrimSpace, not to JSON
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in := bytes.Clone(body)
		result, ok := onlyResult(in)
		if !ok {
			return
		}
		r, err := parseObject(body, true, parseOptions{maxActions: 100})
		if err != nil {
			t.Fatalf("shortcut read %q as result %q; the general path refuses it: %v", body, result, err)
		}
		if want := (Reply{Result: r.Result}); !reflect.DeepEqual(*r, want) {
			t.Fatalf("shortcut read %q as only a result; the general path also finds %+v", body, r)
		}
		if string(result) != string(r.Result) {
			t.Fatalf("%q: shortcut result %q, general path %q", body, result, r.Result)
		}
		for i := range in { // the caller's buffer is reused: the result must be a copy
			in[i] = 'x'
		}
		if string(result) != string(r.Result) {
			t.Fatalf("%q: the shortcut's result shares the body's memory", body)
		}
	})
}
