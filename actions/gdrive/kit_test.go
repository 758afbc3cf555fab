package gdrive_test

import (
	"testing"

	"google.golang.org/api/drive/v3"

	"github.com/sous-run/sous/actions/gdrive"
	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/connector/connectortest"
	"github.com/sous-run/sous/internal/clients/google"
)

// TestKit runs the shared action checks on every gdrive action against
// the fake (which takes the kit's canary token).
func TestKit(t *testing.T) {
	withFile := func() *google.Fake {
		f := google.NewFake("")
		f.AddFile(&google.FakeFile{File: drive.File{Id: "kitfile1", Name: "kit.txt", MimeType: "text/plain",
			WebViewLink: "https://drive.google.com/file/d/kitfile1/view", Parents: []string{"root"}}})
		return f
	}
	tests := []struct {
		spec *connector.Spec
		with map[string]any
	}{
		{gdrive.Upload, map[string]any{"name": "a.txt", "content": "hello", "folder_id": "root"}},
		{gdrive.CreateFolder, map[string]any{"name": "Recordings"}},
		{gdrive.Share, map[string]any{"file_id": "kitfile1", "email": "ada@example.com", "role": "writer"}},
	}
	for _, tc := range tests {
		t.Run(tc.spec.ID, func(t *testing.T) {
			connectortest.Run(t, connectortest.Kit{Spec: tc.spec, Connection: connector.Values{connector.ConnToken: "set-by-the-kit"},
				With: tc.with, Fake: withFile()})
		})
	}
}
