package layering

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// layers lists the module's packages from the bottom up. A package imports
// packages of lower layers only: neither its own layer nor a higher one,
// except that the packages one "x/..." names may import each other (x/y
// imports x). "x/..." names x and every package below it; an exact name
// wins over a pattern, a longer pattern over a shorter one. A package in
// no layer fails the test: add it where it belongs. Only the packages' own
// imports are checked, not those of their tests (engine tests import
// triggers/all and actions/all to have connectors to run).
//
// The order is the one of docs/development.md and DESIGN.md ("recipes below
// runner below pipeline ..."), checked against the real graph (`go list -f
// '{{.ImportPath}}: {{join .Imports " "}}' ./...`), which decided where the
// design is silent:
//   - engine/store and engine/metrics import no other engine package and
//     the runner needs neither: they sit above the runner, beside its
//     recipe-test driver, and below the pipeline that uses them.
//   - engine/broker is what the engine knows of a broker (the interface,
//     the capabilities a broker declares, the messages they share); it
//     uses the store's types (store.Writer, store.Op, store.Execer: one
//     Execer for the store and every broker), so it sits above the store.
//     The SQL queue (engine/broker/sqlite/sqlqueue) follows its
//     conventions (broker.LocalKey, broker.CrashesKey...): one layer up.
//   - the concrete brokers (engine/broker/sqlite, memory, postgres, nats)
//     share the engine's layer (issue 20 item 3): the engine may not
//     import one, no broker may import the engine or another broker, and
//     engine/service, above them, picks one.
//   - engine/server sits below engine/service, which assembles it (DESIGN.md
//     says "service below server"; the code and docs/development.md say the
//     service builds the server).
//   - schemas reads the runtime settings from engine/settings, not from
//     engine/service (issue 20 item 4): it sits above the service only
//     because nothing below asks for it, and could move down.
//   - engine/settings (the runtime settings described once, issue 20 item
//     4) imports engine/connector and recipes: it sits beside the runner,
//     below the service and schemas that read it, so that it may use the
//     language but no store or broker.
//   - internal/catalog only renders the registry: a helper near the bottom.
//     internal/gen writes every generated file from every connector: a
//     program, at the top.
//   - internal/hosttest is a connector written against the trigger
//     contract alone (issue 20): it is limited as a service's packages are,
//     so that its tests prove a new service needs no engine import.
//   - engine/oauth (issue 21: the connections' OAuth tokens, sealed in
//     the store) keeps its rows through engine/store and may use the
//     connector contract: it sits right above the store. Nothing below it
//     (the store, the runner, the language, the contract) imports it, so
//     no token can reach a run record or a connector except through what
//     the pipeline and the service above hand them.
//   - the test helpers engine/store/storetest and engine/broker/nats/natstest
//     sit one layer above the package they serve.
var layers = []struct {
	name string
	pkgs []string
}{
	{"contract", []string{"engine/connector"}},
	{"helpers", []string{"engine/connector/connectortest", "internal/sqlin", "internal/httpx", "internal/logbuf", "internal/allcheck", "internal/catalog", "internal/benchrecipes"}},
	{"language", []string{"recipes/..."}},
	{"runner", []string{"engine/runner", "engine/settings/..."}},
	{"store", []string{"engine/runner/recipetest", "engine/store", "engine/metrics"}},
	{"tokens", []string{"engine/oauth"}},
	{"broker", []string{"engine/broker"}},
	{"queue", []string{"engine/broker/sqlite/sqlqueue"}},
	{"pipeline", []string{"engine/pipeline", "engine/broker/sqlite", "engine/broker/memory", "engine/broker/postgres", "engine/broker/nats", "engine/store/storetest"}},
	{"zapier", []string{"engine/zapier"}},
	{"server", []string{"engine/server", "engine/broker/nats/natstest"}},
	{"service", []string{"engine/service"}},
	{"schemas", []string{"schemas"}},
	{"service clients", []string{"internal/clients/..."}},
	{"connectors", []string{"triggers/...", "actions/...", "internal/hosttest"}},
	{"connector sets", []string{"triggers/all", "actions/all"}},
	{"programs", []string{"cmd/...", "internal/gen", "internal/layering"}},
}

// limits narrows, for some packages, what of this module they import, on
// top of the layers. A service's packages (its triggers, its actions, its
// API client) import only the connector contract, the HTTP helpers made
// for them and API clients (DESIGN.md: "Triggers and actions import only
// engine/connector and internal/clients"); triggers/all and actions/all
// import only the connectors they gather. Third-party and standard packages
// are not limited.
var limits = []struct {
	pkgs    []string
	imports []string
}{
	{[]string{"triggers/...", "actions/...", "internal/clients/...", "internal/hosttest"}, []string{"engine/connector", "internal/httpx", "internal/clients/..."}},
	{[]string{"triggers/all"}, []string{"triggers/..."}},
	{[]string{"actions/all"}, []string{"actions/..."}},
}

// allowed lists the imports that break the layering today, "from -> to",
// each with the issue that removes it. An entry no longer needed fails the
// test, so that the list only shrinks.
var allowed = map[string]string{}

// pkg is one package of the module and what of the module it imports, by
// paths relative to the module ("engine/runner").
type pkg struct {
	path    string
	imports []string
}

// specificity says how closely pattern names path: 0 not at all, more for
// a longer pattern, most for the exact name.
func specificity(pattern, path string) int {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		if path == base || strings.HasPrefix(path, base+"/") {
			return len(base) + 1
		}
		return 0
	}
	if path == pattern {
		return 1 << 20
	}
	return 0
}

// best returns the index of the group whose patterns name path most
// closely and that pattern, or -1 and "".
func best(groups [][]string, path string) (int, string) {
	at, pattern, most := -1, "", 0
	for i, patterns := range groups {
		for _, p := range patterns {
			if s := specificity(p, path); s > most {
				at, pattern, most = i, p, s
			}
		}
	}
	return at, pattern
}

// layerOf returns the index of path's layer and the pattern that put it
// there, or -1 and "".
func layerOf(path string) (int, string) {
	groups := make([][]string, len(layers))
	for i, l := range layers {
		groups[i] = l.pkgs
	}
	return best(groups, path)
}

// limitOf returns the imports path is limited to, or nil when only the
// layers apply.
func limitOf(path string) []string {
	groups := make([][]string, len(limits))
	for i, l := range limits {
		groups[i] = l.pkgs
	}
	if i, _ := best(groups, path); i >= 0 {
		return limits[i].imports
	}
	return nil
}

// check returns every import of pkgs that breaks the layers or a limit and
// is not in allow, and every entry of allow that no import needs.
func check(pkgs []pkg, allow map[string]string) []string {
	var problems []string
	used := map[string]bool{}
	for _, p := range pkgs {
		from, tree := layerOf(p.path)
		if from < 0 {
			problems = append(problems, fmt.Sprintf("%s is in no layer: add it to layers in internal/layering/layering_test.go", p.path))
			continue
		}
		limit := limitOf(p.path)
		for _, imp := range p.imports {
			edge := p.path + " -> " + imp
			if _, ok := allow[edge]; ok {
				used[edge] = true
				continue
			}
			to, impTree := layerOf(imp)
			switch {
			case to < 0:
				problems = append(problems, fmt.Sprintf("%s imports %s, which is in no layer", p.path, imp))
				continue
			case to == from && impTree == tree && strings.HasSuffix(tree, "/..."):
				// Within one tree of a layer (recipes/x imports recipes).
			case to >= from:
				problems = append(problems, fmt.Sprintf("%s (layer %s) imports %s (layer %s): a package imports only lower layers", p.path, layers[from].name, imp, layers[to].name))
				continue
			}
			if i, _ := best([][]string{limit}, imp); limit != nil && i < 0 {
				problems = append(problems, fmt.Sprintf("%s imports %s: it may import only %s of this module", p.path, imp, strings.Join(limit, ", ")))
			}
		}
	}
	for edge, why := range allow {
		if !used[edge] {
			problems = append(problems, fmt.Sprintf("allowed import %s (%s) no longer happens: remove it from allowed", edge, why))
		}
	}
	slices.Sort(problems)
	return problems
}

// goRun runs the go command in dir and returns its standard output.
func goRun(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go %s: %s", strings.Join(args, " "), stderr.String())
	return out
}

// modulePackages lists the module's packages with `go list`, each with its
// imports from the module (not its tests' imports).
func modulePackages(t *testing.T) []pkg {
	t.Helper()
	gomod := strings.TrimSpace(string(goRun(t, ".", "env", "GOMOD")))
	require.NotEmpty(t, gomod, "not inside a module")
	root := filepath.Dir(gomod)
	module := strings.TrimSpace(string(goRun(t, root, "list", "-m")))

	dec := json.NewDecoder(bytes.NewReader(goRun(t, root, "list", "-json=ImportPath,Imports", "./...")))
	var pkgs []pkg
	for {
		var lp struct {
			ImportPath string
			Imports    []string
		}
		err := dec.Decode(&lp)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "decode go list output")
		path, ok := relative(module, lp.ImportPath)
		require.True(t, ok, "go list ./... listed %s, outside module %s", lp.ImportPath, module)
		p := pkg{path: path}
		for _, imp := range lp.Imports {
			if rel, ok := relative(module, imp); ok {
				p.imports = append(p.imports, rel)
			}
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// relative returns path relative to module, and whether it is in module.
func relative(module, path string) (string, bool) {
	if path == module {
		return ".", true
	}
	return strings.CutPrefix(path, module+"/")
}

// TestLayering checks the module's real import graph against layers,
// limits and allowed.
func TestLayering(t *testing.T) {
	pkgs := modulePackages(t)
	paths := make([]string, len(pkgs))
	for i, p := range pkgs {
		paths[i] = p.path
	}
	// A listing that lost the engine or the CLI would check nothing.
	require.Subset(t, paths, []string{"engine/connector", "engine/runner", "engine/pipeline", "cmd/sous", "triggers/webhook", "actions/http"})

	t.Run("imports", func(t *testing.T) {
		require.Empty(t, strings.Join(check(pkgs, allowed), "\n"), "imports that break the layering (docs/development.md)")
	})
	t.Run("layers name packages", func(t *testing.T) {
		for _, l := range layers {
			for _, p := range l.pkgs {
				if !strings.HasSuffix(p, "/...") {
					require.Contains(t, paths, p, "layer %s names %s, which is no package: remove it", l.name, p)
				}
			}
		}
	})
}

// TestCheck shows what check accepts and what it reports, on made-up
// graphs.
func TestCheck(t *testing.T) {
	tests := []struct {
		name  string
		pkgs  []pkg
		allow map[string]string
		want  []string
	}{
		{
			name: "downward imports",
			pkgs: []pkg{
				{path: "engine/pipeline", imports: []string{"engine/runner", "engine/store", "recipes", "engine/connector"}},
				{path: "cmd/sous", imports: []string{"engine/service", "triggers/all", "actions/all", "engine/runner/recipetest"}},
				{path: "internal/gen", imports: []string{"schemas", "triggers/all"}},
			},
		},
		{
			name: "upward import",
			pkgs: []pkg{{path: "recipes", imports: []string{"engine/runner"}}},
			want: []string{"recipes (layer language) imports engine/runner (layer runner): a package imports only lower layers"},
		},
		{
			name: "same layer",
			pkgs: []pkg{{path: "engine/store", imports: []string{"engine/metrics"}}},
			want: []string{"engine/store (layer store) imports engine/metrics (layer store): a package imports only lower layers"},
		},
		{
			name: "within one tree of a layer",
			pkgs: []pkg{{path: "recipes/lint", imports: []string{"recipes"}}},
		},
		{
			name: "connector imports another connector",
			pkgs: []pkg{{path: "triggers/slack", imports: []string{"triggers/jira"}}},
			want: []string{"triggers/slack imports triggers/jira: it may import only engine/connector, internal/httpx, internal/clients/... of this module"},
		},
		{
			name: "engine imports a connector",
			pkgs: []pkg{{path: "engine/pipeline", imports: []string{"triggers/webhook"}}},
			want: []string{"engine/pipeline (layer pipeline) imports triggers/webhook (layer connectors): a package imports only lower layers"},
		},
		{
			name: "engine imports a service client",
			pkgs: []pkg{{path: "engine/server", imports: []string{"internal/clients/slack"}}},
			want: []string{"engine/server (layer server) imports internal/clients/slack (layer service clients): a package imports only lower layers"},
		},
		{
			name: "connector imports what it may",
			pkgs: []pkg{
				{path: "actions/slack", imports: []string{"engine/connector", "internal/httpx", "internal/clients/slack"}},
				{path: "triggers/slack", imports: []string{"engine/connector", "internal/clients/slack"}},
				{path: "internal/clients/slack", imports: []string{"internal/httpx"}},
				{path: "actions/all", imports: []string{"actions/http", "actions/slack"}},
			},
		},
		{
			name: "connector imports the runner",
			pkgs: []pkg{{path: "actions/slack", imports: []string{"engine/runner"}}},
			want: []string{"actions/slack imports engine/runner: it may import only engine/connector, internal/httpx, internal/clients/... of this module"},
		},
		{
			name: "service client imports the store",
			pkgs: []pkg{{path: "internal/clients/jira", imports: []string{"engine/store"}}},
			want: []string{"internal/clients/jira imports engine/store: it may import only engine/connector, internal/httpx, internal/clients/... of this module"},
		},
		{
			name: "connector set imports the engine",
			pkgs: []pkg{{path: "triggers/all", imports: []string{"triggers/webhook", "engine/pipeline"}}},
			want: []string{"triggers/all imports engine/pipeline: it may import only triggers/... of this module"},
		},
		{
			name: "package in no layer",
			pkgs: []pkg{
				{path: "engine/newthing", imports: []string{"engine/connector"}},
				{path: "engine/runner", imports: []string{"engine/other"}},
			},
			want: []string{
				"engine/newthing is in no layer: add it to layers in internal/layering/layering_test.go",
				"engine/runner imports engine/other, which is in no layer",
			},
		},
		{
			name:  "allowed import",
			pkgs:  []pkg{{path: "recipes", imports: []string{"engine/runner"}}},
			allow: map[string]string{"recipes -> engine/runner": "issue 0"},
		},
		{
			name:  "stale allowed import",
			pkgs:  []pkg{{path: "recipes", imports: []string{"engine/connector"}}},
			allow: map[string]string{"recipes -> engine/runner": "issue 0"},
			want:  []string{"allowed import recipes -> engine/runner (issue 0) no longer happens: remove it from allowed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, check(tt.pkgs, tt.allow))
		})
	}
}
