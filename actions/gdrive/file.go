package gdrive

import (
	"strings"

	"google.golang.org/api/drive/v3"
)

// fileFields are the fields asked of Drive for a file.
const fileFields = "id,name,mimeType,webViewLink,size,md5Checksum,parents"

// output is a file as the actions return it.
func output(f *drive.File, existed bool) map[string]any {
	return map[string]any{"id": f.Id, "name": f.Name, "web_view_link": f.WebViewLink, "size": f.Size,
		"md5": f.Md5Checksum, "mime_type": f.MimeType, "existed": existed}
}

// quote is a string literal of Drive's query language.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
