// Package allcheck holds the checks that triggers/all and actions/all
// each run on themselves: every connector package under triggers/ (or
// actions/) is imported by all.go, and every registered connector of that
// kind belongs to an imported package. It is test support, shared so that
// the two checks cannot drift apart.
package allcheck

import (
	"bufio"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
)

// modulePath reads the module path from go.mod.
func modulePath(t *testing.T) string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "go.mod"))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(m), `"`)
		}
	}
	t.Fatal("go.mod has no module line")
	return ""
}

// imports lists the import paths of a Go file.
func imports(t *testing.T, file string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ImportsOnly)
	require.NoError(t, err)
	var out []string
	for _, im := range f.Imports {
		p, err := strconv.Unquote(im.Path.Value)
		require.NoError(t, err)
		out = append(out, p)
	}
	return out
}

// packageDirs lists the directories of root that hold a Go package (a
// non-test .go file), other than all.
func packageDirs(t *testing.T, root string) []string {
	t.Helper()
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || name == "all" || name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
			continue
		}
		files, err := os.ReadDir(filepath.Join(root, name))
		require.NoError(t, err)
		for _, f := range files {
			if !f.IsDir() && strings.HasSuffix(f.Name(), ".go") && !strings.HasSuffix(f.Name(), "_test.go") {
				out = append(out, name)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// importProblems compares the imports of root/all/all.go with the package
// directories of root.
func importProblems(t *testing.T, root, prefix string) []string {
	t.Helper()
	var problems []string
	imported := map[string]bool{}
	for _, p := range imports(t, filepath.Join(root, "all", "all.go")) {
		if !strings.HasPrefix(p, prefix) {
			problems = append(problems, fmt.Sprintf("all.go imports %s, which is not under %s", p, prefix))
			continue
		}
		imported[strings.TrimPrefix(p, prefix)] = true
	}
	dirs := packageDirs(t, root)
	for _, d := range dirs {
		if !imported[d] {
			problems = append(problems, fmt.Sprintf("%s%s is not imported by all/all.go: add\n\t_ %q", prefix, d, prefix+d))
		}
	}
	for name := range imported {
		if !slices.Contains(dirs, name) {
			problems = append(problems, fmt.Sprintf("all.go imports %s%s, which is not a package directory", prefix, name))
		}
	}
	sort.Strings(problems)
	return problems
}

// TestEveryPackageIsImported fails when a package under actions/ is
// missing from all.go, so that its connectors would never register.
func everyPackageIsImported(t *testing.T, dir string) {
	prefix := modulePath(t) + "/" + dir + "/"
	require.NotEmpty(t, packageDirs(t, ".."))
	require.Empty(t, importProblems(t, "..", prefix))
}

// TestImportCheckCatchesMistakes runs the check on a fake tree: a package
// that all.go forgets, and an import of a directory that does not exist.
func importCheckCatchesMistakes(t *testing.T) {
	root := t.TempDir()
	write := func(name, src string) {
		p := filepath.Join(root, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(src), 0o644))
	}
	write("all/all.go", "package all\n\nimport (\n\t_ \"example.test/m/x/kept\"\n\t_ \"example.test/m/x/gone\"\n\t_ \"example.test/other/pkg\"\n)\n")
	write("kept/spec.go", "package kept\n")
	write("forgotten/spec.go", "package forgotten\n")
	write("onlytests/x_test.go", "package onlytests\n")
	write("testdata/spec.go", "package testdata\n")
	require.Equal(t, []string{
		"all.go imports example.test/m/x/gone, which is not a package directory",
		"all.go imports example.test/other/pkg, which is not under example.test/m/x/",
		"example.test/m/x/forgotten is not imported by all/all.go: add\n\t_ \"example.test/m/x/forgotten\"",
	}, importProblems(t, root, "example.test/m/x/"))
}

// connectorProblems checks that the service of every connector ID (the
// part before the dot) names an imported package, and that every imported
// package registers a connector of its service.
func connectorProblems(ids []string, imported []string, prefix string) []string {
	var problems []string
	pkgs := map[string]bool{}
	for _, p := range imported {
		pkgs[strings.TrimPrefix(p, prefix)] = true
	}
	registers := map[string]bool{}
	for _, id := range ids {
		service, _, ok := strings.Cut(id, ".")
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: an ID is <service>.<name>", id))
			continue
		}
		if !pkgs[service] {
			problems = append(problems, fmt.Sprintf("%s is registered, but %s%s is not imported by all.go", id, prefix, service))
		}
		registers[service] = true
	}
	for name := range pkgs {
		if !registers[name] {
			problems = append(problems, fmt.Sprintf("%s%s registers no connector whose ID starts with %q", prefix, name, name+"."))
		}
	}
	sort.Strings(problems)
	return problems
}

// TestEveryConnectorHasItsPackage fails when a registered connector's
// service is not the name of an imported package (webhook.received lives
// in triggers/webhook, http.request in actions/http), or when an imported
// package registers nothing.
func everyConnectorHasItsPackage(t *testing.T, kind connector.Kind, dir string) {
	ids := connector.Default.IDs(kind)
	require.NotEmpty(t, ids)
	require.Empty(t, connectorProblems(ids, imports(t, "all.go"), modulePath(t)+"/"+dir+"/"))

	// this package gathers only its own kind
	other := connector.KindAction
	if kind == connector.KindAction {
		other = connector.KindTrigger
	}
	require.Empty(t, connector.Default.IDs(other), "%s/all imports a package of another kind", dir)
}

func connectorCheckCatchesMistakes(t *testing.T) {
	require.Equal(t, []string{
		"m/x/silent registers no connector whose ID starts with \"silent.\"",
		"noservice: an ID is <service>.<name>",
		"zoom.meeting_ended is registered, but m/x/zoom is not imported by all.go",
	}, connectorProblems(
		[]string{"webhook.received", "zoom.meeting_ended", "noservice"},
		[]string{"m/x/webhook", "m/x/silent"},
		"m/x/",
	))
}

// Run runs every check for the all package of a kind, whose directory
// (triggers or actions) is dir; core lists IDs that must be registered.
// The caller is the all package's own test, which imports it.
func Run(t *testing.T, kind connector.Kind, dir string, core []string) {
	t.Run("every package is imported", func(t *testing.T) { everyPackageIsImported(t, dir) })
	t.Run("the import check catches mistakes", importCheckCatchesMistakes)
	t.Run("every connector has its package", func(t *testing.T) { everyConnectorHasItsPackage(t, kind, dir) })
	t.Run("the connector check catches mistakes", connectorCheckCatchesMistakes)
	t.Run("core connectors are registered", func(t *testing.T) {
		for _, id := range core {
			s, ok := connector.Default.Lookup(id)
			require.True(t, ok, id)
			require.Equal(t, kind, s.Kind)
		}
	})
}
