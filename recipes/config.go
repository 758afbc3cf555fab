package recipes

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/sous-run/sous/engine/connector"
)

// Config is the service config file, sous.yaml.
type Config struct {
	File        string
	Listen      string
	DataDir     string
	Recipes     string
	APIKeys     []string
	LogLevel    string
	Connections map[string]*ConnectionConfig
	// Extra holds the top-level sections this package does not interpret
	// (read by the runtime), as YAML nodes with ${VAR} already expanded.
	Extra map[string]*yaml.Node
	// broken names the connections a partial config (ParseConfigPartial)
	// could not read: recipes naming them are not told they do not exist
	broken map[string]bool
}

// ConnectionConfig is one named connection.
type ConnectionConfig struct {
	Name   string
	Type   string
	Pos    Pos
	Values connector.Values
	Spec   *connector.ConnectionSpec
}

// LogLevels are the values of log_level.
var LogLevels = []string{"debug", "info", "warn", "error"}

// MinAPIKey is the length an API key should have at least: a shorter one
// is a warning (easy to guess), one shorter than MinSecretLen an error (it
// could not be redacted from logs).
const MinAPIKey = 16

// runtimeKeys are sections of sous.yaml read by the runtime.
var runtimeKeys = []string{"broker", "retention", "limits", "pipeline"}

var configKeys = append([]string{"listen", "data_dir", "recipes", "api_keys", "log_level", "connections"}, runtimeKeys...)

// LoadConfig reads and checks a config file, expanding ${VAR} from the
// environment.
// The config is nil when there is an error.
func LoadConfig(path string, reg *connector.Registry) (*Config, Diagnostics) {
	return whole(LoadConfigPartial(path, reg))
}

// ParseConfig reads a config from its source; lookup reads the environment.
// The config is nil when there is an error.
func ParseConfig(path string, src []byte, lookup func(string) (string, bool), reg *connector.Registry) (*Config, Diagnostics) {
	return whole(ParseConfigPartial(path, src, lookup, reg))
}

// whole keeps a partial config only when it has no error.
func whole(cfg *Config, diags Diagnostics) (*Config, Diagnostics) {
	if diags.HasErrors() {
		return nil, diags
	}
	return cfg, diags
}

// LoadConfigPartial is LoadConfig for a checker: see ParseConfigPartial.
func LoadConfigPartial(path string, reg *connector.Registry) (*Config, Diagnostics) {
	src, err := readFile(path)
	if err != nil {
		return nil, Diagnostics{{Pos: Pos{File: path}, Severity: SevError, Message: err.Error()}}
	}
	return ParseConfigPartial(path, src, os.LookupEnv, reg)
}

// ParseConfigPartial is ParseConfig for a checker (`sous validate`): with
// errors it still returns what it could read, so that the checks that
// depend on the config (its recipes folder, its runtime sections, the
// connections recipes name) go on and report their own problems in the
// same pass. It leaves out what the errors are about: a runtime section
// holding an error is not in Extra (it would be reported twice), and a
// connection that could not be read is not in Connections (a recipe
// naming it is not told it does not exist). The config is nil only when
// the file is not a YAML mapping. Never serve a config with errors.
func ParseConfigPartial(path string, src []byte, lookup func(string) (string, bool), reg *connector.Registry) (cfg *Config, diags Diagnostics) {
	if reg == nil {
		reg = connector.Default
	}
	f := newFile(path, src)
	defer func() {
		if p := recover(); p != nil {
			f.errorAt(Pos{File: path, Line: 1, Col: 1}, "internal error while loading: %v", p)
			cfg, diags = nil, f.diags
		}
	}()
	root := f.parseDoc(src)
	if root == nil {
		return nil, f.diags
	}
	f.expandEnv(root, lookup)
	cfg = &Config{File: path, Listen: "127.0.0.1:8080", DataDir: "data", LogLevel: "info",
		Connections: map[string]*ConnectionConfig{}, Extra: map[string]*yaml.Node{}}
	fields, ok := f.fields(root, "config", configKeys...)
	if !ok {
		return nil, f.diags
	}
	if p, ok := fields["listen"]; ok {
		cfg.Listen, _ = f.str(p.val, "listen")
	}
	if p, ok := fields["data_dir"]; ok {
		cfg.DataDir, _ = f.str(p.val, "data_dir")
	}
	if p, ok := fields["recipes"]; ok {
		cfg.Recipes, _ = f.str(p.val, "recipes")
	}
	if p, ok := fields["log_level"]; ok {
		if v, ok := f.str(p.val, "log_level"); ok {
			if !contains(LogLevels, v) {
				f.errorf(p.val, "log_level: %q is not one of %s%s", v, strings.Join(LogLevels, ", "), suggest(v, LogLevels))
			}
			cfg.LogLevel = v
		}
	}
	if p, ok := fields["api_keys"]; ok {
		items, _ := f.sequence(p.val, "api_keys")
		for i, n := range items {
			if k, ok := f.str(n, fmt.Sprintf("api_keys[%d]", i)); ok {
				switch {
				case strings.TrimSpace(k) == "":
					// also when ${VAR} expands to spaces alone
					f.errorf(n, "api_keys[%d]: an API key may not be blank", i)
				case strings.TrimSpace(k) != k:
					f.errorf(n, "api_keys[%d]: an API key may not start or end with white space: HTTP drops it from a header, so the key could never match", i)
				case utf8.RuneCountInString(k) < MinSecretLen:
					f.errorf(n, "api_keys[%d]: an API key needs at least %d characters (it could not be redacted from logs)", i, MinSecretLen)
				case utf8.RuneCountInString(k) < MinAPIKey:
					f.warnf(n, "api_keys[%d]: an API key of %d characters is easy to guess: use at least %d (openssl rand -hex 16)", i, utf8.RuneCountInString(k), MinAPIKey)
				}
				cfg.APIKeys = append(cfg.APIKeys, k)
			}
		}
	}
	for _, k := range runtimeKeys {
		if p, ok := fields[k]; ok {
			cfg.Extra[k] = p.val
		}
	}
	if p, ok := fields["connections"]; ok {
		pairs, _ := f.mapping(p.val, "connections")
		for _, cp := range pairs {
			before := f.diags.Errors()
			if c := parseConnection(f, cp, reg); c != nil && f.diags.Errors() == before {
				cfg.Connections[c.Name] = c
			} else {
				if cfg.broken == nil {
					cfg.broken = map[string]bool{}
				}
				cfg.broken[cp.key.Value] = true
			}
		}
	}
	if f.diags.HasErrors() {
		dropErrored(cfg, root, f.diags)
	}
	return cfg, f.diags
}

// dropErrored removes from a partial config's Extra the runtime sections
// that hold an error: from a section's key to the next top-level key.
func dropErrored(cfg *Config, root *yaml.Node, diags Diagnostics) {
	for root != nil && root.Kind == yaml.AliasNode {
		root = root.Alias
	}
	if root == nil || root.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key := root.Content[i]
		if _, ok := cfg.Extra[key.Value]; !ok {
			continue
		}
		end := -1 // to the end of the file
		if i+2 < len(root.Content) {
			end = root.Content[i+2].Line
		}
		for _, d := range diags {
			if d.Severity == SevError && d.Line >= key.Line && (end < 0 || d.Line < end) {
				delete(cfg.Extra, key.Value)
				break
			}
		}
	}
}

func parseConnection(f *file, p pair, reg *connector.Registry) *ConnectionConfig {
	name := p.key.Value
	what := "connections." + name
	if !stepIDRE.MatchString(name) {
		f.errorf(p.key, "%s: the name must be lower case letters, digits and _, starting with a letter", what)
	}
	pairs, ok := f.mapping(p.val, what)
	if !ok {
		return nil
	}
	c := &ConnectionConfig{Name: name, Pos: f.pos(p.key), Values: connector.Values{}}
	var typeNode *yaml.Node
	for _, kv := range pairs {
		if kv.key.Value == "type" {
			typeNode = kv.val
		}
	}
	if typeNode == nil {
		f.errorf(p.key, "%s: missing required field \"type\"", what)
		return nil
	}
	typ, ok := f.str(typeNode, what+".type")
	if !ok {
		return nil
	}
	c.Type = typ
	spec, ok := reg.Connection(typ)
	if !ok {
		var types []string
		for _, cs := range reg.Connections() {
			types = append(types, cs.Type)
		}
		f.errorf(typeNode, "%s.type: unknown connection type %q%s", what, typ, suggest(typ, types))
		return nil
	}
	c.Spec = spec
	names := []string{"type"}
	for _, fd := range spec.Fields {
		names = append(names, fd.Name)
	}
	seen := map[string]bool{}
	refused := false // a field set but refused: its error says what to mend
	for _, kv := range pairs {
		key := kv.key.Value
		if key == "type" {
			continue
		}
		fd, ok := spec.Field(key)
		if !ok {
			f.errorf(kv.key, "%s: unknown field %q for a %s connection%s", what, key, typ, suggestOr(key, names))
			continue
		}
		seen[key] = true
		v, err := fd.CheckValue(f.value(kv.val))
		if err != nil {
			if fd.Secret {
				err = fmt.Errorf("the value does not fit (%s)", fd.Type)
			}
			f.errorf(kv.val, "%s.%s: %v", what, key, err)
			refused = true
			continue
		}
		f.checkNestedSecrets(what+"."+key, fd, kv.val, v)
		if fd.Secret {
			if plain := f.plainScalar(kv.val); plain != nil {
				f.warnf(plain, "%s.%s is a secret written in plain text: use ${VAR} to read it from the environment", what, key)
			}
			switch short := v.(type) {
			case string:
				if err := ShortSecretError("", ShortSecrets(map[string]string{"value": short})); err != nil {
					f.errorf(kv.val, "%s.%s: %v", what, key, err)
					refused = true
					continue
				}
			case map[string]string:
				// a map of headers holds values that are not secret too
				// (X-Retries: 3): a short one is only told of
				if names := ShortSecrets(short); len(names) > 0 {
					f.warnf(kv.val, "%s.%s: %s not redacted from run records and logs (shorter than %d characters): fine only if not secret",
						what, key, strings.Join(names, ", "), MinSecretLen)
				}
			}
		}
		c.Values[key] = v
	}
	for _, fd := range spec.Fields {
		if seen[fd.Name] {
			continue
		}
		if fd.Default != nil {
			c.Values[fd.Name] = fd.Default
		} else if fd.Required {
			f.errorf(p.key, "%s: missing required field %q for a %s connection", what, fd.Name, typ)
		}
	}
	if !refused {
		// else "set token, or oauth" would be said of a token refused above
		for _, fe := range spec.Check(c.Values) {
			f.errorf(p.key, "%s: %s", what, fe.Error())
		}
	}
	return c
}

var envRE = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

// expandEnv replaces ${VAR} and ${VAR:-default} in every scalar value
// (not in mapping keys); $$ is a literal $. A missing variable without a
// default is an error naming it.
func (f *file) expandEnv(n *yaml.Node, lookup func(string) (string, bool)) {
	switch n.Kind {
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		fromEnv := false
		n.Value = envRE.ReplaceAllStringFunc(n.Value, func(m string) string {
			if m == "$$" {
				return "$"
			}
			fromEnv = true
			sub := envRE.FindStringSubmatch(m)
			v, set := lookup(sub[1])
			if v != "" {
				return v
			}
			if sub[2] != "" {
				return sub[2][2:]
			}
			if set {
				f.errorf(n, "environment variable %s is empty (write ${%s:-} to allow that)", sub[1], sub[1])
			} else {
				f.errorf(n, "environment variable %s is not set", sub[1])
			}
			return ""
		})
		if fromEnv {
			if f.fromEnv == nil {
				f.fromEnv = map[*yaml.Node]bool{}
			}
			f.fromEnv[n] = true
			// a value that came from the environment is a string, whatever it looks like
			n.Tag = "!!str"
		}
	case yaml.MappingNode:
		// values only: a key is a name the file gives, never read from
		// the environment (one that looks like ${VAR} is an unknown field)
		for i := 1; i < len(n.Content); i += 2 {
			f.expandEnv(n.Content[i], lookup)
		}
	default:
		for _, c := range n.Content {
			f.expandEnv(c, lookup)
		}
	}
}

// plainScalar returns the first non-empty scalar under n that was written
// in the file rather than read from the environment, or nil.
func (f *file) plainScalar(n *yaml.Node) *yaml.Node {
	n = f.deref(n)
	if n == nil {
		return nil
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag != "!!null" && n.Value != "" && !f.fromEnv[n] {
			return n
		}
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			if p := f.plainScalar(n.Content[i]); p != nil {
				return p
			}
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if p := f.plainScalar(c); p != nil {
				return p
			}
		}
	}
	return nil
}

// SecretValues lists the values of every secret field of every connection,
// for redaction.
func (c *Config) SecretValues() []string {
	if c == nil {
		return nil
	}
	var out []string
	for _, conn := range c.Connections {
		out = appendSecrets(out, conn.Spec.Fields, conn.Values)
	}
	return out
}

// appendSecrets appends the values of the secret fields of values, and of
// the secret keys of its object fields, to out.
func appendSecrets(out []string, fields []connector.Field, values map[string]any) []string {
	for _, fd := range fields {
		if len(fd.Fields) > 0 {
			if m, ok := values[fd.Name].(map[string]any); ok {
				out = appendSecrets(out, fd.Fields, m)
			}
		}
		if !fd.Secret {
			continue
		}
		switch v := values[fd.Name].(type) {
		case string:
			out = append(out, v)
		case map[string]string:
			for _, s := range v {
				out = append(out, s)
			}
		}
	}
	return out
}

// checkNestedSecrets warns of the secret keys of an object field (a
// connection's oauth block) written in plain text, and refuses short ones,
// as for a secret field; checked is the field's value once checked.
func (f *file) checkNestedSecrets(what string, fd *connector.Field, n *yaml.Node, checked any) {
	m, ok := checked.(map[string]any)
	if len(fd.Fields) == 0 || !ok {
		return
	}
	pairs, ok := f.mapping(n, what)
	if !ok {
		return
	}
	for _, kv := range pairs {
		sub, ok := fd.Field(kv.key.Value)
		if !ok {
			continue
		}
		f.checkNestedSecrets(what+"."+sub.Name, sub, kv.val, m[sub.Name])
		if !sub.Secret {
			continue
		}
		if plain := f.plainScalar(kv.val); plain != nil {
			f.warnf(plain, "%s.%s is a secret written in plain text: use ${VAR} to read it from the environment", what, sub.Name)
		}
		if v, ok := m[sub.Name].(string); ok {
			if err := ShortSecretError("", ShortSecrets(map[string]string{"value": v})); err != nil {
				f.errorf(kv.val, "%s.%s: %v", what, sub.Name, err)
			}
		}
	}
}

// Connection resolves a connection by name for an action.
func (c *Config) Connection(name string) (*connector.Connection, error) {
	if c == nil {
		return nil, fmt.Errorf("connection %q: no config file loaded", name)
	}
	conn, ok := c.Connections[name]
	if !ok {
		return nil, fmt.Errorf("connection %q is not in %s", name, c.File)
	}
	return &connector.Connection{Name: conn.Name, Type: conn.Type, Values: conn.Values}, nil
}
