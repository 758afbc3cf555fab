package outlook

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sous-run/sous/internal/clients/microsoft"
)

// ParseMessage reads one message of Graph's message list. It needs an id
// and a receivedDateTime in RFC 3339.
func ParseMessage(raw []byte) (*microsoft.Message, error) {
	var m microsoft.Message
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("graph message: %w", err)
	}
	if err := checkMessage(&m); err != nil {
		return nil, err
	}
	return &m, nil
}

// checkMessage checks what the poller relies on.
func checkMessage(m *microsoft.Message) error {
	if m.ID == "" {
		return errors.New("graph message: no id")
	}
	if _, err := time.Parse(time.RFC3339Nano, m.ReceivedDateTime); err != nil {
		return fmt.Errorf("graph message %s: receivedDateTime %q is not RFC 3339", m.ID, m.ReceivedDateTime)
	}
	return nil
}

// utc renders a Graph date-time in RFC 3339 UTC ("" when not one).
func utc(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func addressesOf(rs []microsoft.Recipient) []any {
	out := []any{}
	for _, r := range rs {
		if r.EmailAddress.Address != "" {
			out = append(out, r.EmailAddress.Address)
		}
	}
	return out
}

// Payload is the event of message m from folder, with its attachments
// (as attachmentOf gives them).
func Payload(m *microsoft.Message, folder string, atts []any) map[string]any {
	if atts == nil {
		atts = []any{}
	}
	ev := map[string]any{
		"id": m.ID, "message_id": strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(m.InternetMessageID), "<"), ">"),
		"from": "", "from_name": "", "to": addressesOf(m.ToRecipients), "cc": addressesOf(m.CcRecipients),
		"reply_to": addressesOf(m.ReplyTo), "subject": m.Subject, "date": utc(m.ReceivedDateTime), "sent_date": utc(m.SentDateTime),
		"text": "", "html": "", "preview": m.BodyPreview, "has_attachments": m.HasAttachments, "attachments": atts,
		"is_read": m.IsRead, "web_link": m.WebLink, "conversation_id": m.ConversationID, "folder": folder,
	}
	from := m.From
	if from == nil {
		from = m.Sender
	}
	if from != nil {
		ev["from"], ev["from_name"] = from.EmailAddress.Address, from.EmailAddress.Name
	}
	if m.Body != nil {
		if strings.EqualFold(m.Body.ContentType, "html") {
			ev["html"] = m.Body.Content
		} else {
			ev["text"] = m.Body.Content
		}
	}
	return ev
}

// attachmentOf is an attachment as the event carries it; content is
// base64 ("" when not fetched), omitted when it was asked for and left out.
func attachmentOf(a microsoft.Attachment, content string, omitted bool) map[string]any {
	out := map[string]any{"filename": a.Name, "name": a.Name, "content_type": a.ContentType, "size": a.Size, "inline": a.IsInline}
	if content != "" {
		out["content_base64"] = content
	}
	if omitted {
		out["omitted"] = true
	}
	return out
}

// matches applies the recipe's filters to m.
func matches(m *microsoft.Message, from, subject string, needAttachments bool) bool {
	if needAttachments && !m.HasAttachments {
		return false
	}
	if subject != "" && !strings.Contains(strings.ToLower(m.Subject), strings.ToLower(subject)) {
		return false
	}
	if from != "" {
		f := m.From
		if f == nil {
			f = m.Sender
		}
		if f == nil {
			return false
		}
		want := strings.ToLower(from)
		if !strings.Contains(strings.ToLower(f.EmailAddress.Address), want) && !strings.Contains(strings.ToLower(f.EmailAddress.Name), want) {
			return false
		}
	}
	return true
}
