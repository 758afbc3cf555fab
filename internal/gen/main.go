// Command gen writes the generated files: schemas/recipe.schema.json,
// schemas/config.schema.json and docs/connectors.md, from the connector
// specs. `make generate` runs it.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	_ "github.com/sous-run/sous/actions/all"
	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/catalog"
	_ "github.com/sous-run/sous/internal/clients/all"
	"github.com/sous-run/sous/schemas"
	_ "github.com/sous-run/sous/triggers/all"
)

// Files returns the generated files by path relative to the module root.
func Files() (map[string][]byte, error) {
	schema, err := schemas.Generate(connector.Default)
	if err != nil {
		return nil, fmt.Errorf("generate schema: %w", err)
	}
	config, err := schemas.GenerateConfig(connector.Default)
	if err != nil {
		return nil, fmt.Errorf("schemas/config.schema.json: %w", err)
	}
	return map[string][]byte{
		"schemas/recipe.schema.json": schema,
		"schemas/config.schema.json": config,
		"docs/connectors.md":         catalog.Markdown(connector.Default),
	}, nil
}

func main() {
	root := "."
	if len(os.Args) > 1 {
		root = os.Args[1]
	}
	files, err := Files()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for path, data := range files {
		full := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := os.WriteFile(full, data, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("wrote", full)
	}
}
