// Package dropbox holds the Dropbox actions: dropbox.upload, over plain
// HTTP through the connection's client (internal/clients/dropbox).
package dropbox
