package slack

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/slack-go/slack"

	"github.com/sous-run/sous/engine/connector"
	sc "github.com/sous-run/sous/internal/clients/slack"
)

// uploadFile runs the external-upload flow through slack-go's
// UploadFileContext: files.getUploadURLExternal, the upload to the URL it
// gives, files.completeUploadExternal; then files.info for the link.
func uploadFile(ctx context.Context, req *connector.Request) (map[string]any, error) {
	api, err := sc.NewAPI(req.Connection)
	if err != nil {
		return nil, err
	}
	w := req.With
	data := []byte(w.String(FieldContent))
	if w.Has(FieldContentBase64) {
		if data, err = base64.StdEncoding.DecodeString(w.String(FieldContentBase64)); err != nil {
			return nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("content_base64: %w", err))
		}
	}
	if len(data) == 0 {
		return nil, connector.Permanent(connector.ReasonInvalid, errors.New("the file is empty: give content or content_base64"))
	}
	channel, id := w.String(FieldChannel), ""
	if channel != "" {
		if id, err = sc.ResolveChannel(ctx, api, channel); err != nil {
			return nil, err
		}
	}
	name := w.String(FieldFilename)
	title := w.String(FieldTitle)
	if title == "" {
		title = name
	}
	f, err := api.UploadFileContext(ctx, slack.UploadFileParameters{
		Filename: name, Title: title, Content: string(data), FileSize: len(data),
		Channel: id, InitialComment: w.String(FieldInitialComment), ThreadTimestamp: w.String(FieldThreadTS),
	})
	if err != nil {
		return nil, sc.Classify("files.uploadV2", channel, err)
	}
	info, _, _, err := api.GetFileInfoContext(ctx, f.ID, 0, 0)
	if err != nil {
		return nil, sc.Classify("files.info", channel, err)
	}
	return map[string]any{"file_id": f.ID, "title": f.Title, "permalink": info.Permalink, "channel": id, "size": len(data)}, nil
}
