package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tourDocs are the pages a newcomer follows in order, all of whose shell
// commands scripts/tour.sh runs.
var tourDocs = []string{"README.md", "docs/getting-started.md", "docs/webhooks.md"}

// notToured are shell commands of tourDocs the tour does not run, and why.
var notToured = map[string]string{
	"make test": "CI runs it, and the tour is part of it",
}

// tourPorts maps the tour's port variables to the ports the docs show.
var tourPorts = strings.NewReplacer("${GW_PORT}", "8080", "$GW_PORT", "8080",
	"${APP_PORT}", "3000", "$APP_PORT", "3000", "${NODE_PORT}", "8081", "$NODE_PORT", "8081")

// TestTour runs scripts/tour.sh: README's tour, docs/getting-started.md and
// docs/webhooks.md top to bottom with the real binary, on free ports.
func TestTour(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	for _, tool := range []string{"bash", "go", "node", "curl", "openssl", "xxd", "base64", "timeout"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the tour needs %s on the PATH: %v", tool, err)
		}
	}
	requireNodeModules(t, filepath.Join(root, "test", "interop"), "make npm")
	requireNodeModules(t, filepath.Join(root, "examples", "functions", "node-chat"), "make npm")
	requireNodeModules(t, filepath.Join(root, "examples", "functions", "chat", "web"), "make npm")

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute) // against hangs only
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join("scripts", "tour.sh"))
	cmd.Dir = root
	// On a hang the script gets SIGTERM, so its trap stops what it started.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = time.Minute
	log := logWriter(t, "tour")
	cmd.Stdout, cmd.Stderr = log, log
	err := cmd.Run()
	log.Close()
	if err != nil {
		t.Fatalf("scripts/tour.sh: %v (its output is above)", err)
	}
}

// TestTourCoversDocs: every shell command in tourDocs is in
// scripts/tour.sh, as written (ports aside) or in a "# doc:" line; every Go
// snippet is in a program under examples/ (which the build compiles and
// the tour runs); every JavaScript snippet is in the tour or examples/.
// So a doc that changes without the tour fails here.
func TestTourCoversDocs(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	scriptText := read(t, filepath.Join(root, "scripts", "tour.sh"))
	script := joinContinuations(strings.Split(tourPorts.Replace(scriptText), "\n"))
	var body strings.Builder
	docLines := map[string]bool{}
	for _, l := range script {
		if c, ok := strings.CutPrefix(strings.TrimSpace(l), "# doc:"); ok {
			docLines[normalizeCommand(c)] = true
		}
		body.WriteString(squash(l))
		body.WriteByte('\n')
	}
	var goFiles, jsFiles []string
	for _, pattern := range []string{"examples/functions/*/*.go", "examples/functions/*/*/*/*.go"} {
		m, _ := filepath.Glob(filepath.Join(root, pattern))
		goFiles = append(goFiles, m...)
	}
	jsFiles, _ = filepath.Glob(filepath.Join(root, "examples", "functions", "*", "*.mjs"))
	jsFiles = append(jsFiles, filepath.Join(root, "scripts", "tour.sh"))
	if len(goFiles) < 3 || len(jsFiles) < 3 {
		t.Fatalf("found only %v and %v", goFiles, jsFiles)
	}

	var commands, snippets int
	for _, doc := range tourDocs {
		text := read(t, filepath.Join(root, doc))
		for _, block := range codeBlocks(text, "sh") {
			for _, c := range joinContinuations(block) {
				c = normalizeCommand(c)
				if c == "" {
					continue
				}
				commands++
				if _, ok := notToured[c]; ok || docLines[c] || strings.Contains(body.String(), c) {
					continue
				}
				t.Errorf("%s: the tour does not run %q: add it to scripts/tour.sh (ports as $GW_PORT, $APP_PORT, $NODE_PORT), "+
					"or put it in a \"# doc:\" line above what stands for it", doc, c)
			}
		}
		for lang, files := range map[string][]string{"go": goFiles, "js": jsFiles} {
			for _, block := range codeBlocks(text, lang) {
				snippets++
				if !containsSnippet(t, files, block) {
					t.Errorf("%s: this %s snippet is in no file of %v, so nothing builds or runs it; "+
						"keep the docs and the examples the same:\n%s", doc, lang, relative(root, files), strings.Join(block, "\n"))
				}
			}
		}
	}
	if commands < 30 || snippets < 5 {
		t.Errorf("found %d commands and %d snippets in %v; the parser lost them", commands, snippets, tourDocs)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// codeBlocks returns the lines of every fenced block of lang in markdown.
func codeBlocks(markdown, lang string) [][]string {
	var blocks [][]string
	var cur []string
	in := false
	for _, l := range strings.Split(markdown, "\n") {
		fence := strings.TrimSpace(l)
		switch {
		case !in && fence == "```"+lang:
			in, cur = true, nil
		case in && fence == "```":
			in = false
			blocks = append(blocks, cur)
		case in:
			cur = append(cur, l)
		}
	}
	return blocks
}

// joinContinuations joins lines ending in a backslash to the next.
func joinContinuations(lines []string) []string {
	var out []string
	var cur strings.Builder
	for _, l := range lines {
		if s, ok := strings.CutSuffix(strings.TrimRight(l, " \t"), `\`); ok {
			cur.WriteString(s)
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(l)
		out = append(out, cur.String())
		cur.Reset()
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

var (
	trailingComment = regexp.MustCompile(`\s+#\s.*$`)
	blanks          = regexp.MustCompile(`\s+`)
)

// normalizeCommand drops a doc line's comment (or the whole line when it
// is one: the docs show output that way) and a trailing "&", and squashes
// blanks.
func normalizeCommand(l string) string {
	l = strings.TrimSpace(l)
	if strings.HasPrefix(l, "#") {
		return ""
	}
	l = trailingComment.ReplaceAllString(l, "")
	l = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(l), "&"))
	return squash(l)
}

func squash(l string) string { return strings.TrimSpace(blanks.ReplaceAllString(l, " ")) }

// containsSnippet reports whether some file holds block's non-blank lines
// in order, one after the other, indentation aside.
func containsSnippet(t *testing.T, files []string, block []string) bool {
	t.Helper()
	var want []string
	for _, l := range block {
		if s := squash(l); s != "" {
			want = append(want, s)
		}
	}
	for _, f := range files {
		var have []string
		for _, l := range strings.Split(read(t, f), "\n") {
			if s := squash(l); s != "" {
				have = append(have, s)
			}
		}
		for i := 0; i+len(want) <= len(have); i++ {
			if equalLines(have[i:i+len(want)], want) {
				return true
			}
		}
	}
	return false
}

func equalLines(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func relative(root string, files []string) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i], _ = filepath.Rel(root, f)
	}
	return out
}
