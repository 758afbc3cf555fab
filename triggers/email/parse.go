package email

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"time"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // bodies in the charsets mail uses, decoded to UTF-8
	gomail "github.com/emersion/go-message/mail"
)

// MaxBodyBytes bounds each of the text and html bodies kept in an event.
const MaxBodyBytes = 1 << 20

// Attachment is a part of a message that is a file.
type Attachment struct {
	Filename string `json:"filename"`
	// Name is Filename again, under the name the issue and other tools
	// use for it.
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	// ContentBase64 is the whole content, when it is at most the limit.
	ContentBase64 string `json:"content_base64,omitempty"`
	// Omitted reports that the content was larger than the limit and
	// left out (Size is still its size).
	Omitted bool `json:"omitted"`
}

// Message is a parsed message, as the event carries it.
type Message struct {
	From        string       `json:"from"`
	FromName    string       `json:"from_name"`
	To          []string     `json:"to"`
	Cc          []string     `json:"cc"`
	ReplyTo     []string     `json:"reply_to"`
	Subject     string       `json:"subject"`
	Date        string       `json:"date"`
	MessageID   string       `json:"message_id"`
	InReplyTo   string       `json:"in_reply_to"`
	Text        string       `json:"text"`
	HTML        string       `json:"html"`
	Attachments []Attachment `json:"attachments"`
}

// ParseMessage turns a message's source (RFC 5322, MIME) into a Message.
// Attachments larger than maxAttachment bytes (decoded) keep their size
// but not their content. A header it cannot read is left empty; a body it
// cannot read ends the parts read so far with an error.
func ParseMessage(raw []byte, maxAttachment int64) (*Message, error) {
	mr, err := gomail.CreateReader(bytes.NewReader(raw))
	if err != nil && (mr == nil || !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err)) {
		return nil, fmt.Errorf("read message: %w", err)
	}
	defer mr.Close()
	h := mr.Header
	m := &Message{To: []string{}, Cc: []string{}, ReplyTo: []string{}, Attachments: []Attachment{}}
	if from, err := h.AddressList("From"); err == nil && len(from) > 0 {
		m.From, m.FromName = from[0].Address, from[0].Name
	} else if err != nil {
		m.From = strings.TrimSpace(h.Get("From"))
	}
	m.To = addresses(h, "To")
	m.Cc = addresses(h, "Cc")
	m.ReplyTo = addresses(h, "Reply-To")
	if s, err := h.Subject(); err == nil {
		m.Subject = s
	} else {
		m.Subject = h.Get("Subject")
	}
	if d, err := h.Date(); err == nil && !d.IsZero() {
		m.Date = d.UTC().Format(time.RFC3339)
	}
	if id, err := h.MessageID(); err == nil {
		m.MessageID = id
	}
	if ids, err := h.MsgIDList("In-Reply-To"); err == nil && len(ids) > 0 {
		m.InReplyTo = ids[0]
	}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if message.IsUnknownCharset(err) || message.IsUnknownEncoding(err) {
				continue
			}
			return m, fmt.Errorf("read message part: %w", err)
		}
		switch ph := p.Header.(type) {
		case *gomail.InlineHeader:
			ct, params, _ := ph.ContentType()
			_, disp, _ := ph.ContentDisposition()
			name := disp["filename"]
			if name == "" {
				name = params["name"]
			}
			switch {
			case name == "" && ct == "text/plain" && m.Text == "":
				m.Text, err = readBody(p.Body)
			case name == "" && ct == "text/html" && m.HTML == "":
				m.HTML, err = readBody(p.Body)
			case name != "" || !strings.HasPrefix(ct, "text/"):
				err = m.attach(name, ct, p.Body, maxAttachment)
			}
		case *gomail.AttachmentHeader:
			ct, _, _ := ph.ContentType()
			name, _ := ph.Filename()
			err = m.attach(name, ct, p.Body, maxAttachment)
		}
		if err != nil {
			return m, err
		}
	}
	return m, nil
}

func addresses(h gomail.Header, key string) []string {
	list, err := h.AddressList(key)
	out := []string{}
	if err != nil {
		if v := strings.TrimSpace(h.Get(key)); v != "" {
			out = append(out, v)
		}
		return out
	}
	for _, a := range list {
		out = append(out, a.Address)
	}
	return out
}

func readBody(r io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxBodyBytes))
	if err != nil {
		return string(b), fmt.Errorf("read body: %w", err)
	}
	_, _ = io.Copy(io.Discard, r)
	return string(b), nil
}

// attach reads an attachment whole when it fits the limit, and only
// counts its size otherwise.
func (m *Message) attach(name, ct string, r io.Reader, limit int64) error {
	if ct == "" {
		ct = "application/octet-stream"
	}
	if name == "" {
		name = "attachment"
		if exts, _ := mime.ExtensionsByType(ct); len(exts) > 0 {
			name += exts[0]
		}
	}
	a := Attachment{Filename: name, Name: name, ContentType: ct}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, limit+1))
	if err != nil {
		return fmt.Errorf("read attachment %q: %w", name, err)
	}
	if n > limit {
		rest, err := io.Copy(io.Discard, r)
		if err != nil {
			return fmt.Errorf("read attachment %q: %w", name, err)
		}
		a.Size, a.Omitted = n+rest, true
	} else {
		a.Size = n
		a.ContentBase64 = base64.StdEncoding.EncodeToString(buf.Bytes())
	}
	m.Attachments = append(m.Attachments, a)
	return nil
}
