package gdrive

import (
	"context"

	"google.golang.org/api/drive/v3"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/google"
)

// createFolder returns the folder of that name in the parent, or makes it.
func createFolder(ctx context.Context, req *connector.Request) (map[string]any, error) {
	svc, err := google.Drive(ctx, req.Connection)
	if err != nil {
		return nil, err
	}
	name, parent := req.With.String(FieldName), req.With.String(FieldFolderID)
	if parent == "" {
		parent = "root"
	}
	q := "name = " + quote(name) + " and mimeType = " + quote(FolderMimeType) + " and " + quote(parent) + " in parents and trashed = false"
	found, err := svc.Files.List().Q(q).Fields("files(" + fileFields + ")").PageSize(1).
		SupportsAllDrives(true).IncludeItemsFromAllDrives(true).Context(ctx).Do()
	if err != nil {
		return nil, google.Classify("find the drive folder", err)
	}
	if len(found.Files) > 0 {
		return output(found.Files[0], true), nil
	}
	got, err := svc.Files.Create(&drive.File{Name: name, MimeType: FolderMimeType, Parents: []string{parent}}).
		Fields(fileFields).SupportsAllDrives(true).Context(ctx).Do()
	if err != nil {
		return nil, google.Classify("create the drive folder", err)
	}
	return output(got, false), nil
}
