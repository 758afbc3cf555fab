package outlook

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net/http"
	netmail "net/mail"
	"path"
	"sort"
	"strings"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/microsoft"
)

// MaxAttachmentBytes is the largest attachment send_mail takes: Graph's
// limit for a fileAttachment in one request is 3 MB (larger ones need an
// upload session).
const MaxAttachmentBytes = 3 << 20

// TransactionID is the id sent for a step's idempotency key (Graph's
// transactionId, and the send_mail header): hex of its SHA-256, the same
// on every attempt, that does not show the run's id.
func TransactionID(key string) string {
	sum := sha256.Sum256([]byte("sous-outlook:" + key))
	return hex.EncodeToString(sum[:16])
}

// address parses one address ("Ada <ada@example.com>" or a bare one).
func address(s string) (microsoft.EmailAddress, error) {
	a, err := netmail.ParseAddress(strings.TrimSpace(s))
	if err != nil {
		return microsoft.EmailAddress{}, fmt.Errorf("%q is not an email address", s)
	}
	return microsoft.EmailAddress{Address: a.Address, Name: a.Name}, nil
}

// addressList reads a recipients option: a string (one address or a
// comma-separated list) or a list of strings.
func addressList(v any) ([]microsoft.Recipient, error) {
	var out []microsoft.Recipient
	add := func(s string) error {
		if strings.TrimSpace(s) == "" {
			return nil
		}
		l, err := netmail.ParseAddressList(s)
		if err != nil {
			return fmt.Errorf("%q is not an email address", s)
		}
		for _, a := range l {
			out = append(out, microsoft.Recipient{EmailAddress: microsoft.EmailAddress{Address: a.Address, Name: a.Name}})
		}
		return nil
	}
	switch x := v.(type) {
	case nil:
	case string:
		if err := add(x); err != nil {
			return nil, err
		}
	case []any:
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("recipient %d is not a string", i+1)
			}
			if err := add(s); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("is neither an address nor a list of them")
	}
	return out, nil
}

// attachmentOf reads one entry of the attachments list.
func attachmentOf(v any) (*microsoft.Attachment, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("is not an object with filename and content or content_base64")
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
	for k := range m {
		switch k {
		case AttFilename, AttName, AttContent, AttContentBase64, AttContentType:
		default:
			return nil, fmt.Errorf("unknown key %q (filename, content, content_base64, content_type)", k)
		}
	}
	vals := map[string]string{}
	for _, k := range []string{AttFilename, AttName, AttContent, AttContentBase64, AttContentType} {
		s, err := str(k)
		if err != nil {
			return nil, err
		}
		vals[k] = s
	}
	a := &microsoft.Attachment{ODataType: microsoft.FileAttachmentType, Name: vals[AttFilename], ContentType: vals[AttContentType]}
	if a.Name == "" {
		a.Name = vals[AttName]
	}
	if a.Name == "" {
		return nil, errors.New("filename is required")
	}
	_, hasText := m[AttContent]
	_, hasB64 := m[AttContentBase64]
	var raw []byte
	switch {
	case hasText && hasB64:
		return nil, errors.New("content and content_base64 are exclusive")
	case hasText:
		raw = []byte(vals[AttContent])
	case hasB64:
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(vals[AttContentBase64]))
		if err != nil {
			return nil, errors.New("content_base64 is not base64")
		}
		raw = b
	default:
		return nil, errors.New("content or content_base64 is required")
	}
	if len(raw) > MaxAttachmentBytes {
		return nil, fmt.Errorf("%d bytes: larger than Graph's 3 MB for an attachment sent inline", len(raw))
	}
	if a.ContentType == "" {
		a.ContentType = mime.TypeByExtension(path.Ext(a.Name))
		if a.ContentType == "" {
			a.ContentType = "application/octet-stream"
		}
	}
	a.ContentBytes = base64.StdEncoding.EncodeToString(raw)
	return a, nil
}

// message builds sendMail's message of with.
func message(with connector.Values, key string) (map[string]any, []string, error) {
	msg := map[string]any{"subject": with.String(FieldSubject)}
	var accepted []string
	for _, f := range []struct{ field, prop string }{
		{FieldTo, "toRecipients"}, {FieldCc, "ccRecipients"}, {FieldBcc, "bccRecipients"}, {FieldReplyTo, "replyTo"},
	} {
		l, err := addressList(with[f.field])
		if err != nil {
			return nil, nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("%s: %w", f.field, err))
		}
		if len(l) == 0 {
			continue
		}
		msg[f.prop] = l
		if f.field != FieldReplyTo {
			for _, r := range l {
				accepted = append(accepted, r.EmailAddress.Address)
			}
		}
	}
	if len(accepted) == 0 {
		return nil, nil, connector.Permanent(connector.ReasonInvalid, errors.New("send mail: no recipients"))
	}
	switch {
	case with.String(FieldHTML) != "":
		msg["body"] = microsoft.ItemBody{ContentType: "HTML", Content: with.String(FieldHTML)}
	default:
		msg["body"] = microsoft.ItemBody{ContentType: "Text", Content: with.String(FieldText)}
	}
	if l, ok := with[FieldAttachments].([]any); ok && len(l) > 0 {
		var atts []*microsoft.Attachment
		for i, v := range l {
			a, err := attachmentOf(v)
			if err != nil {
				return nil, nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("attachment %d: %w", i+1, err))
			}
			atts = append(atts, a)
		}
		msg["attachments"] = atts
	}
	type header struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}
	var headers []header
	if m := with.StringMap(FieldHeaders); len(m) > 0 {
		if err := checkHeaders(m); err != nil {
			return nil, nil, connector.Permanent(connector.ReasonInvalid, err)
		}
		for k, v := range m {
			if strings.EqualFold(k, IdempotencyHeader) {
				continue
			}
			headers = append(headers, header{Name: k, Value: v})
		}
		sort.Slice(headers, func(i, j int) bool { return headers[i].Name < headers[j].Name })
	}
	if key != "" {
		headers = append(headers, header{Name: IdempotencyHeader, Value: key})
	}
	if len(headers) > 0 {
		msg["internetMessageHeaders"] = headers
	}
	return msg, accepted, nil
}

// sendMail posts the message to sendMail; 202 is success.
func sendMail(ctx context.Context, req *connector.Request) (map[string]any, error) {
	key := ""
	if req.IdempotencyKey != "" {
		key = TransactionID(req.IdempotencyKey)
	}
	msg, accepted, err := message(req.With, key)
	if err != nil {
		return nil, err
	}
	body := map[string]any{"message": msg, "saveToSentItems": req.With.Bool(FieldSaveToSentItems)}
	status, err := microsoft.Call(connector.WithCaller(ctx, SendMail.ID), req.Connection, http.MethodPost,
		microsoft.UserPath(req.With.String(FieldUser))+"sendMail", body, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("send mail: %w", err)
	}
	if status != http.StatusAccepted {
		return nil, connector.Permanent(connector.ReasonClientError, fmt.Errorf("send mail: Graph answered %d, not 202 Accepted", status))
	}
	if req.Logger != nil {
		req.Logger.Info("outlook mail accepted", "recipients", len(accepted))
	}
	list := make([]any, len(accepted))
	for i, a := range accepted {
		list[i] = a
	}
	return map[string]any{"accepted": list, "status": int64(status), "message_id": "", "idempotency_key": key,
		"note": "202 Accepted: Graph accepted the message for delivery; it gives no message id"}, nil
}
