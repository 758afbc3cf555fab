// Package dropbox holds the Dropbox triggers: dropbox.file_changed, a
// poller on files/list_folder/continue (internal/clients/dropbox).
package dropbox
