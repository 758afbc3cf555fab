package email

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	netmail "net/mail"
	"net/url"
	"os"
	"path"
	"strings"

	gomail "github.com/wneessen/go-mail"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/mail"
	"github.com/sous-run/sous/internal/httpx"
)

// attachment is one entry of the attachments list.
type attachment struct {
	filename, contentType string
	content               []byte // content or content_base64, decoded
	url                   string
}

func attachmentOf(v any) (*attachment, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("is not an object with filename and content, content_base64 or url")
	}
	str := func(k string) (string, error) {
		x, ok := m[k]
		if !ok || x == nil {
			return "", nil
		}
		s, ok := x.(string)
		if !ok {
			return "", fmt.Errorf("%s is not a string", k)
		}
		return s, nil
	}
	a := &attachment{}
	var err error
	for k := range m {
		switch k {
		case AttFilename, AttContent, AttContentBase64, AttURL, AttContentType:
		default:
			return nil, fmt.Errorf("unknown key %q (filename, content, content_base64, url, content_type)", k)
		}
	}
	if a.filename, err = str(AttFilename); err != nil {
		return nil, err
	}
	if a.contentType, err = str(AttContentType); err != nil {
		return nil, err
	}
	content, err := str(AttContent)
	if err != nil {
		return nil, err
	}
	b64, err := str(AttContentBase64)
	if err != nil {
		return nil, err
	}
	if a.url, err = str(AttURL); err != nil {
		return nil, err
	}
	n := 0
	for _, has := range []bool{m[AttContent] != nil, m[AttContentBase64] != nil, a.url != ""} {
		if has {
			n++
		}
	}
	if n != 1 {
		return nil, fmt.Errorf("set one of content, content_base64 and url")
	}
	switch {
	case m[AttContent] != nil:
		a.content = []byte(content)
	case m[AttContentBase64] != nil:
		if a.content, err = base64.StdEncoding.DecodeString(strings.TrimSpace(b64)); err != nil {
			return nil, fmt.Errorf("content_base64: %w", err)
		}
	default:
		u, err := url.Parse(a.url)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("url %q is not an http(s) URL", a.url)
		}
		if a.filename == "" {
			a.filename = path.Base(u.Path)
		}
	}
	if a.filename == "" || a.filename == "/" || a.filename == "." {
		return nil, fmt.Errorf("no filename")
	}
	return a, nil
}

// addressList reads a string or a list of strings as addresses.
func addressList(v any) ([]string, error) {
	var raw []string
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		raw = []string{x}
	case []any:
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("%v is not an address", e)
			}
			raw = append(raw, s)
		}
	case []string:
		raw = x
	default:
		return nil, fmt.Errorf("is neither an address nor a list of them")
	}
	var out []string
	for _, s := range raw {
		if strings.TrimSpace(s) == "" {
			continue
		}
		if _, err := netmail.ParseAddress(s); err != nil {
			return nil, fmt.Errorf("%q is not an address: %w", s, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// MessageID is the Message-ID of a send: stable across the attempts of
// one step of one run (its idempotency key), at the sender's domain.
func MessageID(idempotencyKey, from string) string {
	sum := sha256.Sum256([]byte(idempotencyKey))
	domain := "sous.local"
	if a, err := netmail.ParseAddress(from); err == nil {
		if _, d, ok := strings.Cut(a.Address, "@"); ok && d != "" {
			domain = d
		}
	}
	return "sous-" + hex.EncodeToString(sum[:16]) + "@" + domain
}

func invalid(format string, args ...any) error {
	return connector.Permanent(connector.ReasonInvalid, fmt.Errorf(format, args...))
}

func send(ctx context.Context, req *connector.Request) (map[string]any, error) {
	if req.Connection == nil {
		return nil, invalid("email.send needs an smtp connection")
	}
	cfg := mail.ConfigOf(req.Connection, 587)
	w := req.With
	from := w.String(FieldFrom)
	if from == "" {
		from = cfg.Username
	}
	if from == "" {
		return nil, invalid("from: not set, and the connection %s has no username", cfg.Name)
	}
	m := gomail.NewMsg()
	if err := m.From(from); err != nil {
		return nil, invalid("from: %w", err)
	}
	var all []string
	for _, k := range []string{FieldTo, FieldCc, FieldBcc} {
		list, err := addressList(w[k])
		if err != nil {
			return nil, invalid("%s: %w", k, err)
		}
		if len(list) == 0 {
			continue
		}
		switch k {
		case FieldTo:
			err = m.To(list...)
		case FieldCc:
			err = m.Cc(list...)
		case FieldBcc:
			err = m.Bcc(list...)
		}
		if err != nil {
			return nil, invalid("%s: %w", k, err)
		}
		for _, s := range list {
			a, _ := netmail.ParseAddress(s)
			all = append(all, a.Address)
		}
	}
	if len(all) == 0 {
		return nil, invalid("to: no recipient")
	}
	if rt := w.String(FieldReplyTo); rt != "" {
		if err := m.ReplyTo(rt); err != nil {
			return nil, invalid("reply_to: %w", err)
		}
	}
	m.Subject(w.String(FieldSubject))
	id := MessageID(cmpOr(req.IdempotencyKey, req.RunID+"/"+req.Step), from)
	m.SetMessageIDWithValue(id)
	m.SetDate()
	for k, v := range w.StringMap(FieldHeaders) {
		switch strings.ToLower(k) {
		case "from", "to", "cc", "bcc", "subject", "message-id", "mime-version", "content-type", "content-transfer-encoding", "date":
			return nil, invalid("headers: %s is set by the action's own fields", k)
		}
		m.SetGenHeader(gomail.Header(k), v)
	}
	text, html := w.String(FieldText), w.String(FieldHTML)
	switch {
	case text == "" && html == "":
		return nil, invalid("set text, html, or both")
	case text != "" && html != "":
		m.SetBodyString(gomail.TypeTextPlain, text)
		m.AddAlternativeString(gomail.TypeTextHTML, html)
	case html != "":
		m.SetBodyString(gomail.TypeTextHTML, html)
	default:
		m.SetBodyString(gomail.TypeTextPlain, text)
	}
	if list, ok := w[FieldAttachments].([]any); ok {
		limit := w.Int(FieldMaxURLBytes)
		if limit <= 0 {
			limit = DefaultMaxURLBytes
		}
		for i, v := range list {
			a, err := attachmentOf(v)
			if err != nil {
				return nil, invalid("attachment %d: %w", i+1, err)
			}
			ct := a.contentType
			if ct == "" {
				ct = mime.TypeByExtension(path.Ext(a.filename))
			}
			var opts []gomail.FileOption
			if ct != "" {
				opts = append(opts, gomail.WithFileContentType(gomail.ContentType(ct)))
			}
			if a.url == "" {
				if err := m.AttachReader(a.filename, bytes.NewReader(a.content), opts...); err != nil {
					return nil, invalid("attachment %s: %w", a.filename, err)
				}
				continue
			}
			f, err := fetch(ctx, a.url, limit)
			if err != nil {
				return nil, fmt.Errorf("attachment %s: %w", a.filename, err)
			}
			defer os.Remove(f.Name())
			defer f.Close()
			m.AttachReadSeeker(a.filename, f, opts...)
		}
	}
	var size countWriter
	if _, err := m.WriteTo(&size); err != nil {
		return nil, invalid("build the message: %w", err)
	}
	c, err := mail.NewSMTPClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		if ctx.Err() != nil {
			return nil, connector.Retryable(connector.ReasonTimeout, 0, fmt.Errorf("send: %w", ctx.Err()))
		}
		return nil, mail.SMTPError(cfg, err)
	}
	accepted := make([]any, len(all))
	for i, a := range all {
		accepted[i] = a
	}
	return map[string]any{"message_id": id, "accepted": accepted, "size": int64(size)}, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

// fetch streams a URL's body into a temporary file (removed by the
// caller), failing past limit bytes; statuses and transport failures
// are classified as for any HTTP call.
func fetch(ctx context.Context, raw string, limit int64) (*os.File, error) {
	body, err := httpx.Fetch(ctx, raw, FieldMaxURLBytes, limit)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	f, err := os.CreateTemp("", "sous-email-attachment-")
	if err != nil {
		return nil, err
	}
	if _, err = io.Copy(f, body); err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}
