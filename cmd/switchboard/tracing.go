package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/switchboard-gw/switchboard/node"
)

// Traces are exported with OTLP over HTTP when the standard OpenTelemetry
// environment variables ask for it, and are off otherwise: no exporter, no
// SDK, no spans (node.Config.TracerProvider stays nil), while W3C trace
// context from clients is still carried into webhooks. See docs/tracing.md.
//
//   - OTEL_TRACES_EXPORTER: "otlp" turns export on, "none" off; unset means
//     on exactly when an OTLP endpoint is set. Other exporters (console,
//     zipkin) are not built in and are refused.
//   - OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT:
//     where spans go; with the other OTEL_EXPORTER_OTLP_* variables
//     (headers, timeout, compression, certificates) read by the exporter.
//   - OTEL_EXPORTER_OTLP_PROTOCOL / OTEL_EXPORTER_OTLP_TRACES_PROTOCOL:
//     only http/protobuf is built in; grpc is refused with a clear error
//     rather than silently sent over HTTP.
//   - OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES name the node
//     (default service.name "switchboard"); OTEL_TRACES_SAMPLER(_ARG) and
//     OTEL_BSP_* tune sampling and batching as the SDK documents.

// tracingEnabled decides from the environment whether to export traces.
func tracingEnabled(getenv func(string) string) (bool, error) {
	exp := strings.TrimSpace(strings.ToLower(getenv("OTEL_TRACES_EXPORTER")))
	endpoint := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != ""
	var on bool
	switch exp {
	case "":
		on = endpoint
	case "none":
		return false, nil
	case "otlp":
		on = true
	default:
		return false, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: this build exports traces with \"otlp\" only (or \"none\")", getenv("OTEL_TRACES_EXPORTER"))
	}
	if !on {
		return false, nil
	}
	proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if proto != "" && proto != "http/protobuf" {
		return false, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: this build sends OTLP over HTTP only; set http/protobuf and the collector's HTTP port (4318)", proto)
	}
	return true, nil
}

// setupTracing sets cfg.TracerProvider when the environment asks for
// trace export, and returns the function that flushes and stops it (a
// no-op when tracing is off).
func setupTracing(cfg *node.Config, getenv func(string) string) (shutdown func(), err error) {
	on, err := tracingEnabled(getenv)
	if err != nil || !on {
		return func() {}, err
	}
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx) // reads the OTEL_EXPORTER_OTLP_* variables
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "switchboard")),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES override the default
		resource.WithTelemetrySDK())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	cfg.TracerProvider = tp
	return func() {
		// Spans still buffered go out now; a collector that is gone
		// must not hold the exit up for long.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tp.Shutdown(ctx)
	}, nil
}
