// Package content is what the actions that upload a file share: its source,
// one of `content` (text), `content_base64` or `url` (fetched with
// httpx.Fetch, at most `max_url_bytes`), checked at load and opened when
// the step runs.
package content

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/httpx"
)

// The fields of a content source.
const (
	FieldContent       = "content"
	FieldContentBase64 = "content_base64"
	FieldURL           = "url"
	FieldMaxURLBytes   = "max_url_bytes"
)

// Decode reads standard base64, padded or not, surrounding space ignored.
func Decode(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}

// CheckBase64 is content_base64's Field.Check.
func CheckBase64(v any) error {
	if _, err := Decode(v.(string)); err != nil {
		return fmt.Errorf("is not base64: %w", err)
	}
	return nil
}

// Validate is a spec's Validate: at most one source (a template is absent
// at load time, so only literals are refused there; Open refuses the rest).
func Validate(with connector.Values) []connector.FieldError {
	if count(with) > 1 {
		return []connector.FieldError{{Message: "set one of content, content_base64 and url"}}
	}
	return nil
}

func count(with connector.Values) int {
	n := 0
	for _, f := range []string{FieldContent, FieldContentBase64, FieldURL} {
		if with.Has(f) {
			n++
		}
	}
	return n
}

// Open opens the step's content, and its content type when the source says
// one (a URL's Content-Type). A URL's body is streamed, at most
// max_url_bytes (defaultLimit when not set): past it the read fails
// permanently, as (*httpx.Fetched).Err then says. Errors are permanent
// invalid_input but the fetch's, classified as any HTTP call's.
func Open(ctx context.Context, with connector.Values, defaultLimit int64) (io.ReadCloser, string, error) {
	if count(with) != 1 {
		return nil, "", connector.Permanent(connector.ReasonInvalid, errors.New("set exactly one of content, content_base64 and url"))
	}
	switch {
	case with.Has(FieldContent):
		return io.NopCloser(strings.NewReader(with.String(FieldContent))), "", nil
	case with.Has(FieldContentBase64):
		b, err := Decode(with.String(FieldContentBase64))
		if err != nil {
			return nil, "", connector.Permanent(connector.ReasonInvalid, errors.New("content_base64 is not base64"))
		}
		return io.NopCloser(bytes.NewReader(b)), "", nil
	}
	limit := with.Int(FieldMaxURLBytes)
	if limit <= 0 {
		limit = defaultLimit
	}
	f, err := httpx.Fetch(ctx, with.String(FieldURL), FieldMaxURLBytes, limit)
	if err != nil {
		return nil, "", fmt.Errorf("fetch the content: %w", err)
	}
	return f, f.ContentType, nil
}
