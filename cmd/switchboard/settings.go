package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// Settings come in three layers, generic over whatever flags a command
// registers (nothing here names one of today's flags, so a flag added
// tomorrow gets its environment variable and file key for free):
//
//	flag on the command line  >  SWITCHBOARD_<FLAG_NAME>  >  key in the --config file  >  built-in default
//
// The file is flat YAML whose keys are the flag names (listen, nats-route,
// max-connections-per-user); the environment variable is the flag name in
// upper case with '-' as '_' (SWITCHBOARD_NATS_ROUTE). See
// docs/configuration.md.

// configFlags is the --config flag and the hook that layers the
// environment and the file under the command line.
type configFlags struct {
	path string
}

// envAliasAnnotation names further environment variables a flag reads,
// after its own SWITCHBOARD_<FLAG_NAME>: names documented before the
// generic mechanism (SWITCHBOARD_ALLOWED_ORIGINS for --allowed-origin).
const envAliasAnnotation = "switchboard-env-alias"

// notSettings are flags that are not settings: they get no file key and no
// environment variable of their own.
var notSettings = map[string]bool{"config": true, "help": true}

// register adds --config to cmd and makes cmd, before it runs, fill every
// flag not given on the command line from the environment, else the file.
func (c *configFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.path, "config", "",
		"YAML file of settings, one key per flag name (listen: \":8080\"); a flag overrides SWITCHBOARD_<FLAG_NAME>, which overrides the file (also $SWITCHBOARD_CONFIG; docs/configuration.md)")
	prev := cmd.PreRunE
	cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
		if err := c.apply(cmd.Flags(), os.LookupEnv); err != nil {
			return err
		}
		if prev != nil {
			return prev(cmd, args)
		}
		return nil
	}
}

// apply layers the environment and the file named by --config (or
// $SWITCHBOARD_CONFIG) under the flags given on the command line.
func (c *configFlags) apply(fs *pflag.FlagSet, lookup func(string) (string, bool)) error {
	path := c.path
	if path == "" {
		if v, ok := lookup(envName("config")); ok {
			path = v
		}
	}
	var file *configFile
	if path != "" {
		var err error
		if file, err = readConfigFile(path); err != nil {
			return err
		}
	}
	return applySettings(fs, file, lookup)
}

// envFlags is the hook for commands without --config (recover): flags not
// given on the command line are read from the environment.
func envFlags(cmd *cobra.Command) {
	prev := cmd.PersistentPreRunE
	cmd.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if err := applySettings(cmd.Flags(), nil, os.LookupEnv); err != nil {
			return err
		}
		if prev != nil {
			return prev(cmd, args)
		}
		return nil
	}
}

// envName is the environment variable of the flag named name.
func envName(name string) string {
	return "SWITCHBOARD_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// envAlias makes the flag name also read the environment variables vars
// (full names), when its own is unset.
func envAlias(fs *pflag.FlagSet, name string, vars ...string) {
	if err := fs.SetAnnotation(name, envAliasAnnotation, vars); err != nil {
		panic(err) // a flag registered under another name: a programming error
	}
}

// envOf returns the environment variable that sets f and its value. An
// empty variable counts as unset, as it always has.
func envOf(f *pflag.Flag, lookup func(string) (string, bool)) (name, value string, ok bool) {
	for _, name := range append([]string{envName(f.Name)}, f.Annotations[envAliasAnnotation]...) {
		if v, set := lookup(name); set && v != "" {
			return name, v, true
		}
	}
	return "", "", false
}

// applySettings sets every flag of fs that the command line did not from
// its environment variable, else from file (which may be nil), and
// reports unknown keys of file. All problems are reported at once, the
// file's in line order.
func applySettings(fs *pflag.FlagSet, file *configFile, lookup func(string) (string, bool)) error {
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *pflag.Flag) { onCommandLine[f.Name] = true })
	var envErrs []error
	var fileErrs []lineError
	fs.VisitAll(func(f *pflag.Flag) {
		if notSettings[f.Name] || onCommandLine[f.Name] {
			return
		}
		if name, v, ok := envOf(f, lookup); ok {
			if err := f.Value.Set(v); err != nil {
				envErrs = append(envErrs, fmt.Errorf("%s: %s", name, valueProblem(f, v, err)))
			}
			f.Changed = true
			return
		}
		if file == nil {
			return
		}
		if e, ok := file.entries[f.Name]; ok {
			if err := e.set(f); err != nil {
				fileErrs = append(fileErrs, lineError{e.line, f.Name, err.Error()})
			}
			f.Changed = true
		}
	})
	if file != nil {
		for key, e := range file.entries {
			if f := fs.Lookup(key); f == nil || notSettings[key] {
				fileErrs = append(fileErrs, lineError{e.line, key, unknownKey(fs, key)})
			}
		}
	}
	errs := envErrs
	if len(fileErrs) > 0 {
		errs = append(errs, file.errors(fileErrs))
	}
	return errors.Join(errs...)
}

// valueProblem says what is wrong with v as f's value: the expected type
// for the plain types (whose values are no secrets, so v is shown), the
// value's own error otherwise.
func valueProblem(f *pflag.Flag, v string, err error) string {
	want := map[string]string{
		"bool": "true or false", "duration": "a duration such as 30s, 5m or 24h",
		"int": "a whole number", "int8": "a whole number", "int16": "a whole number", "int32": "a whole number", "int64": "a whole number",
		"uint": "a whole number, 0 or more", "uint8": "a whole number, 0 or more", "uint16": "a whole number, 0 or more",
		"uint32": "a whole number, 0 or more", "uint64": "a whole number, 0 or more",
		"float32": "a number", "float64": "a number",
	}[f.Value.Type()]
	if want == "" {
		return err.Error()
	}
	return fmt.Sprintf("%q is not %s", v, want)
}

// unknownKey explains a key no flag has, with the nearest flag name.
func unknownKey(fs *pflag.FlagSet, key string) string {
	best, bestDist := "", 4 // suggest only close names
	fs.VisitAll(func(f *pflag.Flag) {
		if d := editDistance(key, f.Name); !notSettings[f.Name] && d < bestDist {
			best, bestDist = f.Name, d
		}
	})
	msg := "unknown key: the keys are the flag names of switchboard serve --help, without the dashes in front"
	if best != "" {
		msg = fmt.Sprintf("unknown key; did you mean %q?", best)
	}
	return msg
}

// editDistance is the Levenshtein distance of a and b (short flag names).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// configFile is a parsed settings file: its top-level keys with the YAML
// node of each value, which carries its line.
type configFile struct {
	path    string
	entries map[string]configEntry
}

type configEntry struct {
	line int
	node *yaml.Node
}

// lineError is a problem with one key of a file.
type lineError struct {
	line int
	key  string
	msg  string
}

// errors reports problems as FILE:LINE: key: problem, one per line, in
// line order.
func (c *configFile) errors(list []lineError) error {
	sort.Slice(list, func(i, j int) bool { return list[i].line < list[j].line })
	var lines []string
	for _, e := range list {
		lines = append(lines, fmt.Sprintf("%s:%d: %s: %s", c.path, e.line, e.key, e.msg))
	}
	return errors.New(strings.Join(lines, "\n"))
}

// maxConfigFile bounds what is read: a settings file is a few KiB.
const maxConfigFile = 1 << 20

// readConfigFile reads and parses the settings file at path.
func readConfigFile(path string) (*configFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigFile+1))
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	if len(b) > maxConfigFile {
		return nil, fmt.Errorf("%s: larger than %d bytes: this is not a settings file", path, maxConfigFile)
	}
	return parseConfigFile(path, b)
}

// yamlLine finds the line yaml.v3 puts in its syntax errors ("yaml: line
// 3: …").
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// parseConfigFile parses one YAML document whose top level is a mapping of
// flag names to values. An empty file sets nothing.
func parseConfigFile(path string, b []byte) (*configFile, error) {
	c := &configFile{path: path, entries: map[string]configEntry{}}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return c, nil
	} else if err != nil {
		msg := err.Error()
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			return nil, fmt.Errorf("%s:%s: not valid YAML: %s", path, m[1], strings.TrimPrefix(msg, m[0]))
		}
		return nil, fmt.Errorf("%s: not valid YAML: %s", path, strings.TrimPrefix(msg, "yaml: "))
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		line := more.Line
		if len(more.Content) > 0 {
			line = more.Content[0].Line
		}
		return nil, fmt.Errorf("%s:%d: a second YAML document: keep all settings in one", path, line)
	}
	top := &doc
	if top.Kind == yaml.DocumentNode && len(top.Content) == 1 {
		top = top.Content[0]
	}
	if top.Kind == yaml.ScalarNode && top.Tag == "!!null" { // only comments
		return c, nil
	}
	if top.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: the file must be a mapping of settings, key: value per line (listen: \":8080\")", path, top.Line)
	}
	var dups []lineError
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
			dups = append(dups, lineError{k.Line, k.Value, "keys are flag names, plain words such as listen"})
			continue
		}
		if prev, ok := c.entries[k.Value]; ok {
			dups = append(dups, lineError{k.Line, k.Value, fmt.Sprintf("given twice (first on line %d)", prev.line)})
			continue
		}
		c.entries[k.Value] = configEntry{line: k.Line, node: v}
	}
	if len(dups) > 0 {
		return nil, c.errors(dups)
	}
	return c, nil
}

// set gives flag f the entry's value: a scalar as the flag would take it
// on the command line, or a sequence of scalars for a repeatable flag.
func (e configEntry) set(f *pflag.Flag) error {
	n := e.node
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return errors.New("no value: give one, or remove the key for the default")
		}
		if err := f.Value.Set(n.Value); err != nil {
			return errors.New(valueProblem(f, n.Value, err))
		}
		return nil
	case yaml.SequenceNode:
		sv, ok := f.Value.(pflag.SliceValue)
		if !ok {
			return fmt.Errorf("takes one value (%s), not a list", f.Value.Type())
		}
		items := make([]string, 0, len(n.Content))
		for _, item := range n.Content {
			if item.Kind == yaml.AliasNode {
				item = item.Alias
			}
			if item.Kind != yaml.ScalarNode || item.Tag == "!!null" {
				return fmt.Errorf("line %d: list items are plain values", item.Line)
			}
			items = append(items, item.Value)
		}
		if err := sv.Replace(items); err != nil {
			return errors.New(valueProblem(f, strings.Join(items, ","), err))
		}
		return nil
	default:
		if _, ok := f.Value.(pflag.SliceValue); ok {
			return errors.New("takes a list of values, not a mapping")
		}
		return fmt.Errorf("takes one value (%s), not a mapping", f.Value.Type())
	}
}

// flagInError finds the flag a validation error names first ("--kv-replicas
// 7: use 1 to 5"), to point at its key in the file.
var flagInError = regexp.MustCompile(`--([a-z0-9][a-z0-9-]*)`)

// locate prefixes err with the file line of the first key it names, if
// any, so a value the file gave that serve would refuse is found in the
// file.
func (c *configFile) locate(err error) error {
	for _, m := range flagInError.FindAllStringSubmatch(err.Error(), -1) {
		if e, ok := c.entries[m[1]]; ok {
			return fmt.Errorf("%s:%d: %s: %w", c.path, e.line, m[1], err)
		}
	}
	return fmt.Errorf("%s: %w", c.path, err)
}
