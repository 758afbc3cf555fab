package gdrive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"google.golang.org/api/drive/v3"
	"google.golang.org/api/googleapi"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/content"
	"github.com/sous-run/sous/internal/clients/google"
	"github.com/sous-run/sous/internal/httpx"
)

// AppPropertyKey is the app property tagging an uploaded file with its
// step's idempotency key (hashed).
const AppPropertyKey = "sous_step"

// upload finds the file an earlier attempt of the step made (a failed
// lookup is logged and skipped), or uploads the content: the library sends it multipart when it fits one chunk and
// resumable otherwise, resending a failed chunk within its retry deadline.
func upload(ctx context.Context, req *connector.Request) (map[string]any, error) {
	svc, err := google.Drive(ctx, req.Connection)
	if err != nil {
		return nil, err
	}
	w := req.With
	meta := &drive.File{Name: w.String(FieldName), MimeType: w.String(FieldMimeType)}
	if id := w.String(FieldFolderID); id != "" {
		meta.Parents = []string{id}
	}
	if req.IdempotencyKey != "" {
		sum := sha256.Sum256([]byte("sous-gdrive:" + req.IdempotencyKey))
		tag := hex.EncodeToString(sum[:20])
		meta.AppProperties = map[string]string{AppPropertyKey: tag}
		found, err := svc.Files.List().Q("appProperties has { key=" + quote(AppPropertyKey) + " and value=" + quote(tag) + " } and trashed = false").
			Fields("files(" + fileFields + ")").PageSize(1).SupportsAllDrives(true).IncludeItemsFromAllDrives(true).Context(ctx).Do()
		lookupErr := google.Classify("find an earlier upload", err)
		switch {
		case err != nil && (ctx.Err() != nil || connector.Classify(lookupErr).Reason == connector.ReasonAuth):
			return nil, lookupErr // the upload would fail the same way
		case err != nil:
			// best effort: the lookup only guards against a second copy
			// after a lost answer; failing it must not stop the upload
			if req.Logger != nil {
				req.Logger.Warn("drive: earlier upload not looked up; uploading", "error", lookupErr)
			}
		case len(found.Files) > 0:
			return output(found.Files[0], true), nil
		}
	}
	body, contentType, err := content.Open(ctx, w, DefaultMaxURLBytes)
	if err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	defer body.Close()
	opts := []googleapi.MediaOption{googleapi.ChunkSize(int(w.Int(FieldChunkSize)))}
	if ct := w.String(FieldMimeType); ct != "" {
		opts = append(opts, googleapi.ContentType(ct))
	} else if contentType != "" {
		opts = append(opts, googleapi.ContentType(contentType))
	}
	got, err := svc.Files.Create(meta).Media(body, opts...).Fields(fileFields).SupportsAllDrives(true).Context(ctx).Do()
	if f, ok := body.(*httpx.Fetched); ok && f.Err() != nil {
		return nil, fmt.Errorf("upload: %w", f.Err()) // past max_url_bytes: what was sent is abandoned
	}
	if err != nil {
		return nil, google.Classify("upload to drive", err)
	}
	if req.Logger != nil {
		req.Logger.Info("drive upload", "file_id", got.Id, "size", got.Size)
	}
	return output(got, false), nil
}
