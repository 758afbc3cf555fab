package gdrive

import (
	"context"
	"errors"

	"google.golang.org/api/drive/v3"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/google"
)

// share gives a role on a file to an email or to anyone with the link
// (anyone: true or type: anyone).
func share(ctx context.Context, req *connector.Request) (map[string]any, error) {
	svc, err := google.Drive(ctx, req.Connection)
	if err != nil {
		return nil, err
	}
	w := req.With
	perm := &drive.Permission{Role: w.String(FieldRole)}
	anyone, email := toAnyone(w), w.String(FieldEmail)
	switch {
	case anyone && email != "":
		return nil, connector.Permanent(connector.ReasonInvalid, errors.New("share: set email or anyone (anyone: true or type: anyone), not both"))
	case anyone:
		perm.Type = TypeAnyone
	case email != "":
		perm.Type, perm.EmailAddress = w.String(FieldType), email
		if perm.Type == "" {
			perm.Type = "user"
		}
	default:
		return nil, connector.Permanent(connector.ReasonInvalid, errors.New("share: set email, or anyone: true (or type: anyone)"))
	}
	id := w.String(FieldFileID)
	call := svc.Permissions.Create(id, perm).SupportsAllDrives(true).Fields("id,role,type,emailAddress").Context(ctx)
	if email != "" {
		call = call.SendNotificationEmail(w.Bool(FieldSendNotification))
		if m := w.String(FieldMessage); m != "" && w.Bool(FieldSendNotification) {
			call = call.EmailMessage(m)
		}
	}
	got, err := call.Do()
	if err != nil {
		return nil, google.Classify("share the drive file", err)
	}
	file, err := svc.Files.Get(id).Fields("id,webViewLink").SupportsAllDrives(true).Context(ctx).Do()
	if err != nil {
		return nil, google.Classify("get the shared drive file", err)
	}
	return map[string]any{"permission_id": got.Id, "file_id": id, "role": got.Role, "type": got.Type, "web_view_link": file.WebViewLink}, nil
}
