package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/schemas"
)

func TestSchemaCommand(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		wantID string
		title  string
	}{
		{name: "the recipe schema", args: []string{"schema"}, wantID: schemas.ID, title: "Sous recipe"},
		{name: "the recipe schema by name", args: []string{"schema", "recipe"}, wantID: schemas.ID, title: "Sous recipe"},
		{name: "the config schema", args: []string{"schema", "config"}, wantID: schemas.ConfigID, title: "Sous config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sous(t, "", tt.args...)
			require.Equal(t, 0, r.code, r.String())
			require.Empty(t, r.stderr)
			require.True(t, json.Valid([]byte(r.stdout)), "the output is JSON")
			var s struct {
				Schema string `json:"$schema"`
				ID     string `json:"$id"`
				Title  string `json:"title"`
			}
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &s))
			require.Equal(t, "https://json-schema.org/draft/2020-12/schema", s.Schema)
			require.Equal(t, tt.wantID, s.ID)
			require.Equal(t, tt.title, s.Title)
		})
	}
	for _, args := range [][]string{{"schema", "sous.yaml"}, {"schema", "recipe", "config"}, {"schema", "--config", "sous.yaml"}} {
		t.Run("refused: "+strings.Join(args, " "), func(t *testing.T) {
			r := sous(t, "", args...)
			require.Equal(t, 2, r.code, r.String())
			require.Empty(t, r.stdout)
		})
	}
}
