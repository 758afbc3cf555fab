// Package gdrive is Google Drive's actions on a google connection:
// gdrive.upload (content, base64 content or a URL streamed through;
// multipart when it fits one chunk, resumable in chunks otherwise, a
// failed chunk sent again rather than the file), gdrive.create_folder
// (idempotent by name within the parent) and gdrive.share. They call
// Drive v3 through google.golang.org/api/drive/v3 with the connection's
// client.
package gdrive
