package dropbox_test

import (
	"testing"

	"github.com/sous-run/sous/actions/dropbox"
	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/connector/connectortest"
	dbx "github.com/sous-run/sous/internal/clients/dropbox"
)

// TestKit runs the shared action checks on dropbox.upload against the
// fake serving both hosts (base_url names it, so the content host is
// base_url too).
func TestKit(t *testing.T) {
	connectortest.Run(t, connectortest.Kit{Spec: dropbox.Upload, Connection: connector.Values{connector.ConnToken: "set-by-the-kit"},
		With: map[string]any{"path": "/Kit/a.txt", "content": "hello", "mode": "add"}, Fake: dbx.NewFake(""),
		BaseURL: func(u string) string { return u + "/2/" }})
}
