package negotiate

import "testing"

func TestParseConnectionString(t *testing.T) {
	t.Parallel()
	const emuKey = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH"
	tests := []struct {
		name    string
		in      string
		want    ConnectionString
		wantErr string
	}{
		{"azure form", "Endpoint=https://x.service.signalr.net;AccessKey=abc=;Version=1.0;",
			ConnectionString{Endpoint: "https://x.service.signalr.net", AccessKey: "abc=", Version: "1.0"}, ""},
		{"emulator form with Port", "Endpoint=http://localhost;Port=8888;AccessKey=" + emuKey + ";Version=1.0;",
			ConnectionString{Endpoint: "http://localhost:8888", AccessKey: emuKey, Version: "1.0"}, ""},
		{"Port overrides endpoint port", "Endpoint=http://h:1/;Port=2;AccessKey=k",
			ConnectionString{Endpoint: "http://h:2", AccessKey: "k", Version: "1.0"}, ""},
		{"IPv6 with Port", "Endpoint=http://[::1]:1;Port=2;AccessKey=k",
			ConnectionString{Endpoint: "http://[::1]:2", AccessKey: "k", Version: "1.0"}, ""},
		{"keys case-insensitive, any order, no trailing ;", "version=1.1; ACCESSKEY = k ;endpoint=http://h:9;keyid=key-1",
			ConnectionString{Endpoint: "http://h:9", AccessKey: "k", KeyID: "key-1", Version: "1.1"}, ""},
		{"unknown keys ignored", "Endpoint=http://h;AccessKey=k;ClientEndpoint=http://c;AuthType=x",
			ConnectionString{Endpoint: "http://h", AccessKey: "k", Version: "1.0"}, ""},
		{"path kept, trailing slash dropped", "Endpoint=https://h/base/;AccessKey=k",
			ConnectionString{Endpoint: "https://h/base", AccessKey: "k", Version: "1.0"}, ""},
		{"version with suffix", "Endpoint=http://h;AccessKey=k;Version=1.0-preview",
			ConnectionString{Endpoint: "http://h", AccessKey: "k", Version: "1.0-preview"}, ""},
		{"empty", "", ConnectionString{}, "missing Endpoint"},
		{"missing endpoint", "AccessKey=k;Version=1.0", ConnectionString{}, "missing Endpoint"},
		{"missing access key", "Endpoint=http://h;Version=1.0", ConnectionString{}, "missing AccessKey"},
		{"empty access key", "Endpoint=http://h;AccessKey=;", ConnectionString{}, "missing AccessKey"},
		{"endpoint not a URL", "Endpoint=localhost:8080;AccessKey=k", ConnectionString{}, "is not an http(s) URL"},
		{"endpoint ws scheme", "Endpoint=ws://h;AccessKey=k", ConnectionString{}, "is not an http(s) URL"},
		{"endpoint no host", "Endpoint=http://;AccessKey=k", ConnectionString{}, "is not an http(s) URL"},
		{"endpoint with query", "Endpoint=http://h?x=1;AccessKey=k", ConnectionString{}, "must not carry"},
		{"bad port", "Endpoint=http://h;Port=99999;AccessKey=k", ConnectionString{}, `Port "99999"`},
		{"non-numeric port", "Endpoint=http://h;Port=http;AccessKey=k", ConnectionString{}, `Port "http"`},
		{"version 2", "Endpoint=http://h;AccessKey=k;Version=2.0", ConnectionString{}, `Version "2.0" is not supported`},
		{"version 1", "Endpoint=http://h;AccessKey=k;Version=1", ConnectionString{}, `Version "1" is not supported`},
		{"entry without =", "Endpoint=http://h;AccessKey=k;garbage", ConnectionString{}, `entry "garbage" is not key=value`},
		{"long entry redacted", "Endpoint=http://h;supersecretvalue12345", ConnectionString{}, `entry "supersecretv…"`},
		{"duplicate key", "Endpoint=http://h;AccessKey=k;accesskey=j", ConnectionString{}, `key "accesskey" appears twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseConnectionString(tt.in)
			if tt.wantErr != "" {
				mustContain(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("got %v, want %+v", err, tt.want)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestConnectionStringString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cs   ConnectionString
		want string
	}{
		{"plain", ConnectionString{Endpoint: "http://h:1", AccessKey: "k="},
			"Endpoint=http://h:1;AccessKey=k=;Version=1.0;"},
		{"with key id and version", ConnectionString{Endpoint: "https://h", AccessKey: "k", KeyID: "id1", Version: "1.1"},
			"Endpoint=https://h;AccessKey=k;Version=1.1;KeyId=id1;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := tt.cs.String()
			if s != tt.want {
				t.Fatalf("String: got %q, want %q", s, tt.want)
			}
			back, err := ParseConnectionString(s)
			if err != nil {
				t.Fatalf("reparse %q: %v", s, err)
			}
			want := tt.cs
			if want.Version == "" {
				want.Version = "1.0"
			}
			if back != want {
				t.Fatalf("round trip: got %+v, want %+v", back, want)
			}
		})
	}
}

func TestConnectionStringKey(t *testing.T) {
	t.Parallel()
	cs, err := ParseConnectionString("Endpoint=http://h;AccessKey=s3cret;KeyId=k9")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cs.Key(), (AccessKey{ID: "k9", Secret: "s3cret"}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}
