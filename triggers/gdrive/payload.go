package gdrive

import (
	"encoding/json"
	"fmt"

	"google.golang.org/api/drive/v3"
)

// Payload is the event of gdrive.file_created for a file a change of
// changeTime showed, seen by a recipe watching folderID. Every key of
// FileShape is set.
func Payload(folderID, changeTime string, f *drive.File) map[string]any {
	parents := []any{}
	for _, id := range f.Parents {
		parents = append(parents, id)
	}
	owners := []any{}
	for _, o := range f.Owners {
		if o != nil {
			owners = append(owners, map[string]any{"email": o.EmailAddress, "display_name": o.DisplayName})
		}
	}
	return map[string]any{"id": f.Id, "name": f.Name, "mime_type": f.MimeType, "parents": parents, "folder_id": folderID,
		"created_time": f.CreatedTime, "modified_time": f.ModifiedTime, "size": f.Size, "md5": f.Md5Checksum,
		"web_view_link": f.WebViewLink, "owners": owners, "change_time": changeTime}
}

// ParseChange reads one change as changes.list gives it (JSON) and
// returns the payload of its file; a change without a file (removed) or
// without a file id is an error.
func ParseChange(folderID string, raw []byte) (map[string]any, error) {
	var c drive.Change
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("drive change: %w", err)
	}
	if c.File == nil || c.File.Id == "" {
		return nil, fmt.Errorf("drive change without a file")
	}
	return Payload(folderID, c.Time, c.File), nil
}
