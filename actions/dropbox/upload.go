package dropbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	pathpkg "path"
	"strings"
	"time"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/content"
	"github.com/sous-run/sous/internal/clients/dropbox"
)

// ChunkAttempts is how many times one upload-session call is made before
// the step fails (and is retried by the runner as a whole).
const ChunkAttempts = 5

// chunkBackoff is the wait before the n-th resend of a chunk (n from 0),
// unless Dropbox said Retry-After.
var chunkBackoff = func(n int) time.Duration { return min(200*time.Millisecond<<n, 10*time.Second) }

// maxRetryAfter caps a Retry-After honoured inside one step.
const maxRetryAfter = time.Minute

func upload(ctx context.Context, req *connector.Request) (map[string]any, error) {
	conn := req.Connection
	if conn == nil || conn.Client == nil {
		return nil, connector.Permanent(connector.ReasonInvalid, errors.New("dropbox.upload needs a dropbox connection"))
	}
	w := req.With
	u := &uploader{conn: conn, path: w.String(FieldPath), mode: w.String(FieldMode), autorename: w.Bool(FieldAutorename),
		mute: w.Bool(FieldMute), chunk: w.Int(FieldChunkSize)}
	if u.mode == "" {
		u.mode = "add"
	}
	if u.chunk <= 0 {
		u.chunk = DefaultChunkSize
	}
	if !strings.HasPrefix(u.path, "/") || strings.HasSuffix(u.path, "/") {
		return nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("dropbox.upload: path %q must start with / and name a file", u.path))
	}
	src, _, err := content.Open(ctx, w, DefaultMaxURLBytes)
	if err != nil {
		return nil, fmt.Errorf("dropbox.upload: %w", err)
	}
	defer src.Close()
	first, err := u.read(src)
	if err != nil {
		return nil, err
	}
	var next []byte
	if int64(len(first)) == u.chunk {
		if next, err = u.read(src); err != nil {
			return nil, err
		}
	}
	var out map[string]any
	if len(next) == 0 {
		out, err = u.small(ctx, first)
	} else {
		out, err = u.session(ctx, src, first, next)
	}
	if err != nil {
		return nil, err
	}
	if req.Logger != nil {
		req.Logger.Info("dropbox upload", "path", out["path_display"], "size", out["size"], "existed", out["existed"])
	}
	return out, nil
}

type uploader struct {
	conn       *connector.Connection
	path, mode string
	autorename bool
	mute       bool
	chunk      int64
}

// read reads the next chunk (shorter at the end, empty after it).
func (u *uploader) read(src io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(src, u.chunk))
	var ce *connector.Error
	if errors.As(err, &ce) {
		return nil, fmt.Errorf("dropbox.upload: read the content: %w", err) // classified: past max_url_bytes, or the fetch's transport
	}
	if err != nil {
		return nil, connector.Retryable(connector.ReasonNetwork, 0, fmt.Errorf("dropbox.upload: read the content: %w", err))
	}
	return b, nil
}

func (u *uploader) commit() map[string]any {
	return map[string]any{"path": u.path, "mode": u.mode, "autorename": u.autorename, "mute": u.mute, "strict_conflict": false}
}

// small uploads content in one files/upload call.
func (u *uploader) small(ctx context.Context, data []byte) (map[string]any, error) {
	hash := dropbox.ContentHash(data)
	if u.mode == "add" {
		if out, ok, err := u.existing(ctx, hash); err != nil || ok {
			return out, err
		}
	}
	arg := u.commit()
	arg["content_hash"] = hash
	var md dropbox.Metadata
	err := dropbox.Content(ctx, u.conn, "files/upload", arg, bytes.NewReader(data), int64(len(data)), &md)
	if err != nil {
		return u.onCommitError(ctx, err, hash)
	}
	return output(&md, false), nil
}

// session uploads content through an upload session: first and next are
// its first two chunks, src the rest.
func (u *uploader) session(ctx context.Context, src io.Reader, first, next []byte) (map[string]any, error) {
	h := dropbox.NewContentHasher()
	_, _ = h.Write(first)
	var started struct {
		SessionID string `json:"session_id"`
	}
	err := retry(ctx, func() error {
		return dropbox.Content(ctx, u.conn, "files/upload_session/start", map[string]any{"close": false},
			bytes.NewReader(first), int64(len(first)), &started)
	})
	if err != nil {
		return nil, fmt.Errorf("dropbox.upload: start an upload session: %w", err)
	}
	if started.SessionID == "" {
		return nil, connector.Permanent(connector.ReasonClientError, errors.New("dropbox.upload: upload_session/start gave no session id"))
	}
	offset := int64(len(first))
	for chunk := next; len(chunk) > 0; {
		_, _ = h.Write(chunk)
		if offset, err = u.appendChunk(ctx, started.SessionID, offset, chunk); err != nil {
			return nil, err
		}
		if chunk, err = u.read(src); err != nil {
			return nil, err
		}
	}
	hash := h.Hex()
	if u.mode == "add" {
		if out, ok, err := u.existing(ctx, hash); err != nil || ok {
			return out, err
		}
	}
	arg := map[string]any{"cursor": map[string]any{"session_id": started.SessionID, "offset": offset}, "commit": u.commit(), "content_hash": hash}
	var md dropbox.Metadata
	err = retry(ctx, func() error {
		return dropbox.Content(ctx, u.conn, "files/upload_session/finish", arg, http.NoBody, 0, &md)
	})
	if err != nil {
		// a finish whose answer was lost and that was made again finds its
		// session gone or its file in the way: the hash tells
		return u.onCommitError(ctx, err, hash)
	}
	return output(&md, false), nil
}

// appendChunk sends chunk, which starts at off, with append_v2; a failed
// call is made again, from the offset Dropbox reports when it has stored
// part or all of the chunk (incorrect_offset). It returns the offset
// after the chunk.
func (u *uploader) appendChunk(ctx context.Context, sid string, off int64, chunk []byte) (int64, error) {
	end := off + int64(len(chunk))
	pos := off
	for attempt := 1; ; attempt++ {
		arg := map[string]any{"cursor": map[string]any{"session_id": sid, "offset": pos}, "close": false}
		err := dropbox.Content(ctx, u.conn, "files/upload_session/append_v2", arg, bytes.NewReader(chunk[pos-off:]), end-pos, nil)
		if err == nil {
			return end, nil
		}
		if ae, ok := dropbox.AsAPIError(err, "incorrect_offset"); ok {
			c, ok := ae.CorrectOffset()
			if !ok || c < off || c > end {
				return 0, fmt.Errorf("dropbox.upload: the session is at offset %d, outside the chunk at %d to %d: %w", c, off, end, err)
			}
			if c == end {
				return end, nil // the last call was stored; its answer was lost
			}
			if attempt < ChunkAttempts {
				pos = c
				continue
			}
		}
		ce := connector.Classify(err)
		if !ce.Retryable || attempt >= ChunkAttempts {
			return 0, fmt.Errorf("dropbox.upload: append at offset %d: %w", pos, err)
		}
		if err := wait(ctx, attempt-1, ce.RetryAfter); err != nil {
			return 0, err
		}
	}
}

// retry makes call up to ChunkAttempts times while it fails retryably.
func retry(ctx context.Context, call func() error) error {
	for attempt := 1; ; attempt++ {
		err := call()
		if err == nil {
			return nil
		}
		ce := connector.Classify(err)
		if !ce.Retryable || attempt >= ChunkAttempts {
			return err
		}
		if err := wait(ctx, attempt-1, ce.RetryAfter); err != nil {
			return err
		}
	}
}

func wait(ctx context.Context, n int, after time.Duration) error {
	d := chunkBackoff(n)
	if after > 0 {
		d = min(after, maxRetryAfter)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return connector.Retryable(connector.ReasonTimeout, 0, fmt.Errorf("dropbox.upload: %w", ctx.Err()))
	case <-t.C:
		return nil
	}
}

// existing returns the file at path when its content hash is hash.
func (u *uploader) existing(ctx context.Context, hash string) (map[string]any, bool, error) {
	md, err := dropbox.GetMetadata(ctx, u.conn, u.path)
	if err != nil {
		return nil, false, fmt.Errorf("dropbox.upload: look at %s: %w", u.path, err)
	}
	if md != nil && md.Tag == "file" && md.ContentHash == hash {
		return output(md, true), true, nil
	}
	if md == nil || !u.autorename || u.mode != "add" {
		return nil, false, nil
	}
	// another file is at path, so an earlier attempt with autorename may
	// have made "name (1).ext", "name (2).ext", ...: look at those in turn
	ext := pathpkg.Ext(u.path)
	stem := strings.TrimSuffix(u.path, ext)
	for i := 1; i <= MaxRenamesChecked; i++ {
		md, err := dropbox.GetMetadata(ctx, u.conn, fmt.Sprintf("%s (%d)%s", stem, i, ext))
		if err != nil {
			return nil, false, fmt.Errorf("dropbox.upload: look for an earlier renamed upload: %w", err)
		}
		if md == nil {
			break
		}
		if md.Tag == "file" && md.ContentHash == hash {
			return output(md, true), true, nil
		}
	}
	return nil, false, nil
}

// MaxRenamesChecked is how many autorenamed names ("name (n).ext") an
// upload with autorename looks at for an earlier attempt's file.
const MaxRenamesChecked = 20

// onCommitError: a conflict (or a lost finish) is no error when the file
// at path is the content.
func (u *uploader) onCommitError(ctx context.Context, err error, hash string) (map[string]any, error) {
	var ae *dropbox.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusConflict &&
		(ae.Matches("path/conflict") || ae.Matches("lookup_failed") || ae.Matches("not_found")) {
		if out, ok, err2 := u.existing(ctx, hash); err2 == nil && ok {
			return out, nil
		}
	}
	return nil, fmt.Errorf("dropbox.upload: %w", err)
}

func output(md *dropbox.Metadata, existed bool) map[string]any {
	return map[string]any{
		"id": md.ID, "name": md.Name, "path_display": md.PathDisplay, "path_lower": md.PathLower, "size": md.Size,
		"rev": md.Rev, "content_hash": md.ContentHash, "server_modified": md.ServerModified, "existed": existed,
	}
}
