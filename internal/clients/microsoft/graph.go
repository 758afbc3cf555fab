package microsoft

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/httpx"
)

// DefaultBase is Graph's root, the connection's base_url when not set.
const DefaultBase = "https://graph.microsoft.com/v1.0/"

// ErrorBody is Graph's error answer: {"error":{"code","message"}}.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Base is the connection's Graph root, with a trailing slash.
func Base(conn *connector.Connection) (*url.URL, error) {
	base := conn.Values.String(connector.ConnBaseURL)
	if base == "" {
		base = DefaultBase
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("microsoft connection %s: base_url %q is not a URL", conn.Name, base))
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	return u, nil
}

// Call sends method ref (relative to the connection's base_url, or an
// absolute @odata.nextLink on the same host) with body as JSON when not
// nil, through the connection's client (which adds the bearer token and
// waits on its rate limit), and decodes a 2xx answer into out when out is
// not nil and the answer has a body. It returns the status. A failure is
// classified as Classify does. extra headers (Prefer) are added.
func Call(ctx context.Context, conn *connector.Connection, method, ref string, body, out any, extra http.Header) (int, error) {
	if conn == nil || conn.Client == nil {
		return 0, connector.Permanent(connector.ReasonInvalid, errors.New("microsoft graph: no connection client"))
	}
	base, err := Base(conn)
	if err != nil {
		return 0, err
	}
	target, err := base.Parse(ref)
	if err != nil {
		return 0, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("microsoft graph: %w", err))
	}
	if target.Host != base.Host || target.Scheme != base.Scheme {
		// a nextLink elsewhere would carry the token there
		return 0, connector.Permanent(connector.ReasonClientError, fmt.Errorf("microsoft graph: link %s is not under base_url's host", httpx.RedactURL(target)))
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("microsoft graph: %w", err))
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target.String(), rd)
	if err != nil {
		return 0, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("microsoft graph: %w", err))
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range extra {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := conn.Client.HTTP.Do(req)
	if err != nil {
		return 0, httpx.TransportError(method, target, err)
	}
	defer resp.Body.Close()
	raw, err := httpx.ReadBody(resp.Body, httpx.DefaultMaxBody)
	if err != nil {
		return resp.StatusCode, httpx.TransportError(method, target, err)
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, Classify(method, target, resp.StatusCode, resp.Header, raw)
	}
	if out != nil && len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, connector.Permanent(connector.ReasonClientError,
				fmt.Errorf("http %s %s: the answer is not the JSON expected", method, httpx.RedactURL(target)))
		}
	}
	return resp.StatusCode, nil
}

// Classify makes a connector error of Graph's answer code to method u:
// 429 retryable rate_limited and 5xx retryable server_error, both after
// Retry-After; 408 retryable timeout; 401 and 403 permanent auth; 404
// permanent not_found; 409 permanent conflict; any other code permanent
// client_error (httpx.ClassifyStatus). The message
// carries Graph's error code and message (never the request's query).
func Classify(method string, u *url.URL, code int, header http.Header, body []byte) error {
	var eb ErrorBody
	detail := ""
	if json.Unmarshal(body, &eb) == nil && (eb.Error.Code != "" || eb.Error.Message != "") {
		detail = eb.Error.Code
		if eb.Error.Message != "" {
			detail += ": " + eb.Error.Message
		}
	} else {
		detail = strings.TrimSpace(string(body))
		if len(detail) > 200 {
			detail = detail[:200] + "…"
		}
	}
	if detail == "" {
		detail = "(empty body)"
	}
	err := fmt.Errorf("microsoft graph %s %s: %d %s: %s", method, httpx.RedactURL(u), code, http.StatusText(code), detail)
	return httpx.ClassifyStatus(code, header, err)
}

// UserPath is the path of the mailbox or calendar owner: me, or
// users/{user} for a user id or principal name.
func UserPath(user string) string {
	if user == "" || user == "me" {
		return "me/"
	}
	return "users/" + url.PathEscape(user) + "/"
}

// Recipient is Graph's recipient: {"emailAddress":{"address","name"}}.
type Recipient struct {
	EmailAddress EmailAddress `json:"emailAddress"`
}

// EmailAddress is Graph's emailAddress.
type EmailAddress struct {
	Address string `json:"address"`
	Name    string `json:"name,omitempty"`
}

// ItemBody is Graph's itemBody: contentType Text or HTML.
type ItemBody struct {
	ContentType string `json:"contentType"`
	Content     string `json:"content"`
}

// Attachment is a message attachment as Graph lists it
// (#microsoft.graph.fileAttachment carries contentBytes).
type Attachment struct {
	ODataType    string `json:"@odata.type,omitempty"`
	ID           string `json:"id,omitempty"`
	Name         string `json:"name"`
	ContentType  string `json:"contentType,omitempty"`
	Size         int64  `json:"size,omitempty"`
	IsInline     bool   `json:"isInline,omitempty"`
	ContentBytes string `json:"contentBytes,omitempty"`
}

// FileAttachmentType is the @odata.type of a file attachment.
const FileAttachmentType = "#microsoft.graph.fileAttachment"

// Message is the part of Graph's message resource the trigger reads.
type Message struct {
	ID                string       `json:"id"`
	InternetMessageID string       `json:"internetMessageId,omitempty"`
	Subject           string       `json:"subject"`
	Body              *ItemBody    `json:"body,omitempty"`
	BodyPreview       string       `json:"bodyPreview,omitempty"`
	From              *Recipient   `json:"from,omitempty"`
	Sender            *Recipient   `json:"sender,omitempty"`
	ToRecipients      []Recipient  `json:"toRecipients"`
	CcRecipients      []Recipient  `json:"ccRecipients"`
	BccRecipients     []Recipient  `json:"bccRecipients,omitempty"`
	ReplyTo           []Recipient  `json:"replyTo"`
	ReceivedDateTime  string       `json:"receivedDateTime"`
	SentDateTime      string       `json:"sentDateTime,omitempty"`
	HasAttachments    bool         `json:"hasAttachments"`
	IsRead            bool         `json:"isRead"`
	WebLink           string       `json:"webLink,omitempty"`
	ConversationID    string       `json:"conversationId,omitempty"`
	ParentFolderID    string       `json:"parentFolderId,omitempty"`
	Attachments       []Attachment `json:"attachments,omitempty"`
}

// MessagePage is one page of a message list.
type MessagePage struct {
	Value    []Message `json:"value"`
	NextLink string    `json:"@odata.nextLink,omitempty"`
}

// DateTimeTimeZone is Graph's dateTimeTimeZone.
type DateTimeTimeZone struct {
	DateTime string `json:"dateTime"`
	TimeZone string `json:"timeZone"`
}

// Attendee is an event attendee.
type Attendee struct {
	EmailAddress EmailAddress `json:"emailAddress"`
	Type         string       `json:"type"`
}

// Location is an event's location.
type Location struct {
	DisplayName string `json:"displayName"`
}

// OnlineMeeting is an event's onlineMeeting.
type OnlineMeeting struct {
	JoinURL string `json:"joinUrl"`
}

// Event is the part of Graph's event resource the actions write and read.
type Event struct {
	ID                    string            `json:"id,omitempty"`
	TransactionID         string            `json:"transactionId,omitempty"`
	Subject               string            `json:"subject"`
	Body                  *ItemBody         `json:"body,omitempty"`
	Start                 *DateTimeTimeZone `json:"start,omitempty"`
	End                   *DateTimeTimeZone `json:"end,omitempty"`
	IsAllDay              bool              `json:"isAllDay,omitempty"`
	Location              *Location         `json:"location,omitempty"`
	Attendees             []Attendee        `json:"attendees,omitempty"`
	IsOnlineMeeting       bool              `json:"isOnlineMeeting,omitempty"`
	OnlineMeetingProvider string            `json:"onlineMeetingProvider,omitempty"`
	OnlineMeeting         *OnlineMeeting    `json:"onlineMeeting,omitempty"`
	WebLink               string            `json:"webLink,omitempty"`
	ICalUID               string            `json:"iCalUId,omitempty"`
}
