package httpapi_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/switchboard-gw/switchboard/gateway"
	"github.com/switchboard-gw/switchboard/httpapi"
	"github.com/switchboard-gw/switchboard/negotiate"
	"github.com/switchboard-gw/switchboard/store"
)

// openAPIMethods are the operation keys of an OpenAPI path item.
var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// documented reads docs/openapi.yaml and returns its operations as
// "METHOD /path", each mapped to whether it is marked "x-pending" (written
// before the code that serves it), and the document itself.
func documented(t *testing.T) (map[string]bool, map[string]any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "docs", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml is not YAML: %v", err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1") {
		t.Fatalf("openapi version %q, want 3.1.x", v)
	}
	paths, ok := doc["paths"].(map[string]any)
	if !ok || len(paths) == 0 {
		t.Fatal("docs/openapi.yaml has no paths")
	}
	ops := map[string]bool{}
	for path, item := range paths {
		m, ok := item.(map[string]any)
		if !ok {
			t.Fatalf("path %s is not an object", path)
		}
		for key := range m {
			if slices.Contains(openAPIMethods, key) {
				op, _ := m[key].(map[string]any)
				_, pending := op["x-pending"]
				ops[strings.ToUpper(key)+" "+path] = pending
			}
		}
	}
	return ops, doc
}

// openStore opens a bbolt store in a temporary directory, with its keys
// made, as a node does at start.
func openStore(t testing.TB) (*store.DB, []store.Key) {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "sb.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	keys, _, _, err := db.EnsureKeys(t.Context(), func() store.Key { return store.NewKey(time.Now()) }, func() string { return "admin" })
	if err != nil {
		t.Fatal(err)
	}
	return db, keys
}

// served builds a Server the way a node does and lists what it routes.
func served(t *testing.T) map[string]bool {
	t.Helper()
	db, keys := openStore(t)
	gw := gateway.New(gateway.Config{SweepInterval: -1})
	srv := httpapi.New(httpapi.Config{
		Gateway:  gw,
		Store:    db,
		Verifier: negotiate.NewVerifier(store.AccessKeys(keys)),
	})
	routes := map[string]bool{}
	for _, r := range srv.Routes() {
		routes[r.Method+" "+r.Path] = true
	}
	return routes
}

// TestOpenAPICoversRoutes: every route the server serves is documented, and
// every documented operation is served. An operation marked x-pending is
// documented ahead of its code: it may be missing, and once it is served the
// mark must go.
func TestOpenAPICoversRoutes(t *testing.T) {
	ops, _ := documented(t)
	routes := served(t)
	if len(routes) < 10 {
		t.Fatalf("the server lists only %d routes: %v", len(routes), routes)
	}
	for r := range routes {
		pending, ok := ops[r]
		switch {
		case !ok:
			t.Errorf("served but not in docs/openapi.yaml: %s", r)
		case pending:
			t.Errorf("%s is served now: remove its x-pending mark from docs/openapi.yaml", r)
		}
	}
	for op, pending := range ops {
		if !routes[op] && !pending {
			t.Errorf("in docs/openapi.yaml but not served: %s", op)
		}
	}
}

// TestOpenAPIReferencesResolve: every $ref points at something in the
// document, and every path parameter of a path is declared for it.
func TestOpenAPIReferencesResolve(t *testing.T) {
	_, doc := documented(t)
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				if resolve(doc, ref) == nil {
					t.Errorf("%s: $ref %q does not resolve", where, ref)
				}
			}
			for k, e := range x {
				walk(where+"/"+k, e)
			}
		case []any:
			for _, e := range x {
				walk(where, e)
			}
		}
	}
	walk("#", doc)

	for path, item := range doc["paths"].(map[string]any) {
		m := item.(map[string]any)
		for _, want := range pathParams(path) {
			for _, method := range openAPIMethods {
				op, ok := m[method].(map[string]any)
				if !ok {
					continue
				}
				if !declares(doc, m["parameters"], want) && !declares(doc, op["parameters"], want) {
					t.Errorf("%s %s: path parameter {%s} is not declared", strings.ToUpper(method), path, want)
				}
			}
		}
	}
}

// pathParams returns the {names} in an OpenAPI path.
func pathParams(path string) []string {
	var out []string
	for seg := range strings.SplitSeq(path, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			out = append(out, seg[1:len(seg)-1])
		}
	}
	return out
}

// declares reports whether a parameters list has an in: path parameter name.
func declares(doc map[string]any, params any, name string) bool {
	list, _ := params.([]any)
	for _, p := range list {
		pm, _ := p.(map[string]any)
		if ref, ok := pm["$ref"].(string); ok {
			pm, _ = resolve(doc, ref).(map[string]any)
		}
		if pm["name"] == name && pm["in"] == "path" {
			return true
		}
	}
	return false
}

// resolve follows a local JSON pointer ("#/components/schemas/X").
func resolve(doc map[string]any, ref string) any {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	var cur any = doc
	for part := range strings.SplitSeq(rest, "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = m[part]; !ok {
			return nil
		}
	}
	return cur
}
