package settings

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/recipes"
)

// yamlBlock is a ```yaml block of a Markdown file.
var yamlBlock = regexp.MustCompile("(?ms)^```yaml\n(.*?)^```")

// TestRuntimeDocsAgree checks the commented samples of the runtime
// sections in docs/runtime.md, written by hand, against the
// descriptions: every setting is there, nothing else is, and each
// value shown is the default.
func TestRuntimeDocsAgree(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "docs", "runtime.md"))
	require.NoError(t, err)
	shown := map[string]any{}
	for _, m := range yamlBlock.FindAllSubmatch(src, -1) {
		var doc map[string]map[string]any
		require.NoError(t, yaml.Unmarshal(m[1], &doc))
		for sec, keys := range doc {
			for k, v := range keys {
				shown[sec+"."+k] = v
			}
		}
	}
	n := 0
	for _, sec := range Sections {
		for _, s := range sec.Settings {
			name := sec.Name + "." + s.Key
			n++
			t.Run(name, func(t *testing.T) {
				v, ok := shown[name]
				require.True(t, ok, "docs/runtime.md shows %s", name)
				if s.Default == nil {
					return // a placeholder, such as url: postgres://...
				}
				switch s.Type {
				case connector.Duration:
					text := fmt.Sprint(v)
					var d time.Duration
					if s.Days {
						d, err = recipes.ParsePeriod(text)
					} else {
						d, err = time.ParseDuration(text)
					}
					require.NoError(t, err)
					require.Equal(t, s.Default, d, "the default")
				default:
					require.EqualValues(t, s.Default, v, "the default")
				}
			})
		}
	}
	require.Len(t, shown, n, "docs/runtime.md shows only described settings")
}
