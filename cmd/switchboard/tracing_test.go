package main

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-gw/switchboard/node"
)

func TestTracingEnabled(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		env     map[string]string
		want    bool
		wantErr string
	}{
		{"nothing set", nil, false, ""},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true, ""},
		{"traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true, ""},
		{"exporter otlp alone", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true, ""},
		{"exporter none wins over endpoint", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, false, ""},
		{"http/protobuf", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, true, ""},
		{"grpc refused", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, false, "OTLP over HTTP only"},
		{"grpc for traces refused", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}, false, "OTLP over HTTP only"},
		{"grpc ignored when off", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, false, ""},
		{"zipkin refused", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, false, `"otlp" only`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tracingEnabled(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// TestNoOTELEnvNoExporter: with no OTEL_* variable the node gets no
// TracerProvider at all, so no exporter and no SDK exist.
func TestNoOTELEnvNoExporter(t *testing.T) {
	t.Parallel()
	var cfg node.Config
	stop, err := setupTracing(&cfg, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if cfg.TracerProvider != nil {
		t.Fatalf("TracerProvider = %T, want nil with no OTEL_* environment", cfg.TracerProvider)
	}
}

// otlpReceiver is a real OTLP/HTTP trace endpoint on loopback that decodes
// what it receives.
type otlpReceiver struct {
	mu    sync.Mutex
	reqs  []*coltracepb.ExportTraceServiceRequest
	notes chan struct{}
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := new(coltracepb.ExportTraceServiceRequest)
	if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" || proto.Unmarshal(body, req) != nil {
		http.Error(w, "not an OTLP/HTTP protobuf trace export", http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	o.reqs = append(o.reqs, req)
	o.mu.Unlock()
	select {
	case o.notes <- struct{}{}:
	default:
	}
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

// span finds an exported span of trace traceID called name and returns
// its service.name.
func (o *otlpReceiver) span(traceID, name string) (service string, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, req := range o.reqs {
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					if hex.EncodeToString(s.TraceId) == traceID && s.Name == name {
						for _, a := range rs.Resource.GetAttributes() {
							if a.Key == "service.name" {
								service = a.Value.GetStringValue()
							}
						}
						return service, true
					}
				}
			}
		}
	}
	return "", false
}

// TestServeExportsTracesWithOTLP runs the real binary with the standard
// OTEL_* variables pointing at a loopback OTLP receiver: a negotiate
// request's span, in the caller's trace, arrives there, named by
// OTEL_SERVICE_NAME.
func TestServeExportsTracesWithOTLP(t *testing.T) {
	t.Parallel()
	recv := &otlpReceiver{notes: make(chan struct{}, 16)}
	srv := httptest.NewServer(recv)
	t.Cleanup(srv.Close)

	listen := strings.TrimPrefix(closedURL(t), "http://")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	startServe(t, []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + srv.URL, "OTEL_SERVICE_NAME=sb-trace-test",
		"OTEL_BSP_SCHEDULE_DELAY=50"}, // export within 50 ms rather than 5 s
		"--listen", listen, "--db", filepath.Join(t.TempDir(), "sb.db"))

	const traceID = "0af7651916cd43dd8448eb211c80319c"
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+listen+"/client/negotiate?hub=nohub&negotiateVersion=1", nil)
	req.Header.Set("traceparent", "00-"+traceID+"-b7ad6b7169203331-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("negotiate for an unknown hub: %d, want 404", resp.StatusCode)
	}
	for {
		if service, ok := recv.span(traceID, "POST /client/negotiate"); ok {
			if service != "sb-trace-test" {
				t.Errorf("service.name %q, want OTEL_SERVICE_NAME's sb-trace-test", service)
			}
			return
		}
		select {
		case <-recv.notes:
		case <-ctx.Done():
			t.Fatal("the negotiate span never reached the OTLP receiver")
		}
	}
}
