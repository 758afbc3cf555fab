package outlook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/microsoft"
	"github.com/sous-run/sous/internal/httpx"
)

// PageSize is the $top of a message list page; MaxPages bounds the pages
// with new messages one poll reads (more are read by the next poll, at
// once).
const (
	PageSize = 50
	MaxPages = 4
)

// selectFields are the message properties the poller asks for.
const selectFields = "id,internetMessageId,subject,body,bodyPreview,from,sender,toRecipients,ccRecipients,replyTo," +
	"receivedDateTime,sentDateTime,hasAttachments,isRead,webLink,conversationId"

// Cursor is the poller's cursor: the receivedDateTime of the last message
// handled, and the ids of the messages received at that instant that were
// handled (Graph's times are to the second: more may come at it).
type Cursor struct {
	Since string   `json:"since"`
	Seen  []string `json:"seen,omitempty"`
}

// epoch is the cursor of a folder that was empty when the recipe started:
// every message after is new.
const epoch = "1970-01-01T00:00:00Z"

// poll lists the folder's messages from the cursor on. The first poll only
// remembers the newest message.
func poll(ctx context.Context, req *connector.PollRequest) (*connector.PollResult, error) {
	if req.Connection == nil {
		return nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("outlook.email_received needs a microsoft connection"))
	}
	ctx = connector.WithCaller(ctx, EmailReceived.ID)
	w := req.With
	folder := w.String(FieldFolder)
	if folder == "" {
		folder = "inbox"
	}
	base := microsoft.UserPath(w.String(FieldUser)) + "mailFolders/" + url.PathEscape(folder) + "/messages"
	var cur *Cursor
	if len(req.Cursor) > 0 && string(bytes.TrimSpace(req.Cursor)) != "null" {
		cur = &Cursor{}
		if err := json.Unmarshal(req.Cursor, cur); err != nil {
			return nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("outlook.email_received cursor %q: %w", req.Cursor, err))
		}
		if _, err := time.Parse(time.RFC3339Nano, cur.Since); err != nil {
			return nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("outlook.email_received cursor: since %q: %w", cur.Since, err))
		}
	}
	if cur == nil {
		return seed(ctx, req.Connection, base)
	}
	since, _ := time.Parse(time.RFC3339Nano, cur.Since)
	q := url.Values{
		"$filter":  {"receivedDateTime ge " + since.UTC().Format(time.RFC3339Nano)},
		"$orderby": {"receivedDateTime asc"},
		"$top":     {strconv.Itoa(PageSize)},
		"$select":  {selectFields},
	}
	prefer := http.Header{"Prefer": {`outlook.body-content-type="` + w.String(FieldBodyType) + `"`}}
	if w.String(FieldBodyType) == "" {
		prefer = nil
	}
	next := Cursor{Since: cur.Since, Seen: slices.Clone(cur.Seen)}
	nextT := since
	res := &connector.PollResult{}
	ref := base + "?" + q.Encode()
	// pages of messages seen before (many received in one second) are
	// not counted: only pages that move the cursor
	for pages := 0; ref != ""; {
		if pages == MaxPages {
			res.More = true
			break
		}
		var pg struct {
			Value    []json.RawMessage `json:"value"`
			NextLink string            `json:"@odata.nextLink"`
		}
		if _, err := microsoft.Call(ctx, req.Connection, http.MethodGet, ref, nil, &pg, prefer); err != nil {
			if errors.Is(err, httpx.ErrBodyTooLarge) {
				// large bodies: a page over the client's limit
				if next.Since != cur.Since || len(next.Seen) != len(cur.Seen) {
					res.More = true // the next poll starts from here, one message a page
					break
				}
				if q.Get("$top") != "1" {
					q.Set("$top", "1")
					ref = base + "?" + q.Encode()
					continue
				}
			}
			return nil, fmt.Errorf("outlook.email_received: list %s: %w", folder, err)
		}
		moved := false
		for _, raw := range pg.Value {
			m, err := ParseMessage(raw)
			if err != nil {
				return nil, connector.Permanent(connector.ReasonClientError, fmt.Errorf("outlook.email_received: %w", err))
			}
			t, _ := time.Parse(time.RFC3339Nano, m.ReceivedDateTime)
			switch {
			case t.Before(nextT):
				continue // before the cursor: Graph's filter should not give it
			case t.Equal(nextT):
				if slices.Contains(next.Seen, m.ID) {
					continue
				}
				next.Seen = append(next.Seen, m.ID)
			default:
				nextT, next.Since, next.Seen = t, m.ReceivedDateTime, []string{m.ID}
			}
			moved = true
			if !matches(m, w.String(FieldFrom), w.String(FieldSubjectContains), w.Bool(FieldHasAttachments)) {
				continue
			}
			atts, err := attachments(ctx, req.Connection, w, m)
			if err != nil {
				return nil, err
			}
			res.Events = append(res.Events, connector.Event{DedupKey: m.ID, Payload: Payload(m, folder, atts)})
		}
		if moved {
			pages++
		}
		ref = pg.NextLink
	}
	if next.Since != cur.Since || len(next.Seen) != len(cur.Seen) {
		b, err := json.Marshal(next)
		if err != nil {
			return nil, err
		}
		res.Next = b
	}
	if req.Logger != nil && len(res.Events) > 0 {
		req.Logger.Info("outlook messages", "folder", folder, "events", len(res.Events))
	}
	return res, nil
}

// seed is the first poll: the cursor goes to the folder's newest message
// (the ids of every message received at its instant seen, pages followed
// while they all are), or to the epoch for an empty folder; no event.
func seed(ctx context.Context, conn *connector.Connection, base string) (*connector.PollResult, error) {
	q := url.Values{"$orderby": {"receivedDateTime desc"}, "$top": {strconv.Itoa(PageSize)}, "$select": {"id,receivedDateTime"}}
	cur := Cursor{Since: epoch}
	var newest time.Time
	ref := base + "?" + q.Encode()
	for ref != "" {
		var pg microsoft.MessagePage
		if _, err := microsoft.Call(ctx, conn, http.MethodGet, ref, nil, &pg, nil); err != nil {
			return nil, fmt.Errorf("outlook.email_received: list: %w", err)
		}
		ref = pg.NextLink
		for _, m := range pg.Value {
			if err := checkMessage(&m); err != nil {
				return nil, connector.Permanent(connector.ReasonClientError, fmt.Errorf("outlook.email_received: %w", err))
			}
			t, _ := time.Parse(time.RFC3339Nano, m.ReceivedDateTime)
			if newest.IsZero() {
				newest, cur.Since = t, m.ReceivedDateTime
			}
			if !t.Equal(newest) {
				ref = "" // older: the newest instant is all seen
				break
			}
			cur.Seen = append(cur.Seen, m.ID)
		}
	}
	b, err := json.Marshal(cur)
	if err != nil {
		return nil, err
	}
	return &connector.PollResult{Next: b}, nil
}

// attachments lists a message's attachments (name, type, size), and with
// include_attachments fetches each file attachment's content up to
// max_attachment_bytes.
func attachments(ctx context.Context, conn *connector.Connection, w connector.Values, m *microsoft.Message) ([]any, error) {
	if !m.HasAttachments {
		return []any{}, nil
	}
	ref := microsoft.UserPath(w.String(FieldUser)) + "messages/" + url.PathEscape(m.ID) + "/attachments"
	var list struct {
		Value []microsoft.Attachment `json:"value"`
	}
	q := url.Values{"$select": {"id,name,contentType,size,isInline"}}
	if _, err := microsoft.Call(ctx, conn, http.MethodGet, ref+"?"+q.Encode(), nil, &list, nil); err != nil {
		return nil, fmt.Errorf("outlook.email_received: attachments of a message: %w", err)
	}
	include := w.Bool(FieldIncludeAttachments)
	limit := w.Int(FieldMaxAttachmentBytes)
	if limit <= 0 || limit > MaxAttachmentBytes {
		limit = DefaultMaxAttachmentBytes
	}
	out := []any{}
	for _, a := range list.Value {
		if !include {
			out = append(out, attachmentOf(a, "", false))
			continue
		}
		isFile := a.ODataType == "" || a.ODataType == microsoft.FileAttachmentType
		if !isFile || a.Size > limit || a.ID == "" {
			out = append(out, attachmentOf(a, "", true))
			continue
		}
		var full microsoft.Attachment
		if _, err := microsoft.Call(ctx, conn, http.MethodGet, ref+"/"+url.PathEscape(a.ID), nil, &full, nil); err != nil {
			return nil, fmt.Errorf("outlook.email_received: an attachment: %w", err)
		}
		out = append(out, attachmentOf(a, full.ContentBytes, full.ContentBytes == ""))
	}
	return out, nil
}
