package email

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/mail"
)

// MaxPerPoll is how many messages one poll fetches; more are fetched by
// the next poll, at once.
const MaxPerPoll = 50

// MaxIdle bounds one IDLE (RFC 2177 asks clients to renew it within 29
// minutes).
const MaxIdle = 25 * time.Minute

// Cursor is the poller's cursor: the mailbox's UIDVALIDITY, the next UID
// to look at, and the UIDs of the last poll's events that mark_seen or
// move_to still have to act on (they act once the events are stored).
type Cursor struct {
	UIDValidity uint32   `json:"uidvalidity"`
	UIDNext     uint32   `json:"uidnext"`
	Pending     []uint32 `json:"pending,omitempty"`
}

// poll fetches the messages from the cursor's UIDNEXT on. The first poll,
// and a poll that finds another UIDVALIDITY, only saves the mailbox's
// UIDNEXT. With IDLE, a poll that finds nothing waits in IDLE for new mail
// (until poll_interval, or ctx ends) and asks to be polled again at once:
// the poller is then always either fetching or idling, so a message starts
// a run as soon as the server announces it.
//
// It dials per poll: with IDLE a poll lasts until mail arrives or
// poll_interval, so a dial (a few milliseconds against a local server, a
// TLS handshake against a remote one) is rare beside it, and no
// connection outlives the poll that holds the lease.
func poll(ctx context.Context, req *connector.PollRequest) (*connector.PollResult, error) {
	if req.Connection == nil {
		return nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("email.received needs an imap connection"))
	}
	var cur *Cursor
	if len(req.Cursor) > 0 && string(req.Cursor) != "null" {
		cur = &Cursor{}
		if err := json.Unmarshal(req.Cursor, cur); err != nil {
			return nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("email.received cursor %q: %w", req.Cursor, err))
		}
	}
	w := req.With
	mailbox := w.String(FieldMailbox)
	if mailbox == "" {
		mailbox = "INBOX"
	}
	exists := make(chan struct{}, 1)
	opts := &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				select {
				case exists <- struct{}{}:
				default:
				}
			}
		},
	}}
	c, err := mail.DialIMAP(ctx, mail.ConfigOf(req.Connection, 993), opts)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// the poll's context ends whatever command is waiting, IDLE included
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	fail := func(what string, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		err = fmt.Errorf("imap connection %s: %s %s: %w", req.Connection.Name, what, mailbox, err)
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo {
			// a mailbox that does not exist, say: a person must act
			return connector.Permanent(connector.ReasonClientError, err)
		}
		return mail.NetError(err)
	}
	// read-only (EXAMINE) unless the trigger changes the mailbox
	readOnly := !w.Bool(FieldMarkSeen) && w.String(FieldMoveTo) == ""
	sel, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: readOnly}).Wait()
	if err != nil {
		return nil, fail("select", err)
	}
	log := req.Logger
	if cur == nil || cur.UIDValidity != sel.UIDValidity {
		if cur != nil && log != nil {
			log.Warn("the mailbox's UIDVALIDITY changed: starting again from its end, without replaying it",
				"mailbox", mailbox, "was", cur.UIDValidity, "now", sel.UIDValidity)
		}
		next, _ := json.Marshal(Cursor{UIDValidity: sel.UIDValidity, UIDNext: uint32(sel.UIDNext)})
		// with IDLE, come back at once to wait in it
		res := &connector.PollResult{Next: next, More: idles(c, w)}
		_ = c.Logout().Wait()
		return res, nil
	}
	next := *cur
	changed := false
	// the last poll's events are stored (this cursor was saved with them):
	// act on their messages now
	if len(cur.Pending) > 0 {
		if err := act(c, w, cur.Pending); err != nil {
			return nil, fail("mark or move the messages of", err)
		}
		next.Pending, changed = nil, true
	}
	uids, err := newUIDs(c, next.UIDNext)
	if err != nil {
		return nil, fail("search", err)
	}
	idled := false
	if len(uids) == 0 && idles(c, w) {
		idled = true
		if err := idle(ctx, c, exists, min(max(w.Duration(FieldPollInterval), time.Second), MaxIdle)); err != nil {
			return nil, fail("idle in", err)
		}
		if uids, err = newUIDs(c, next.UIDNext); err != nil {
			return nil, fail("search", err)
		}
	}
	res := &connector.PollResult{More: idled || idles(c, w)}
	if len(uids) > MaxPerPoll {
		uids, res.More = uids[:MaxPerPoll], true
	}
	if len(uids) > 0 {
		evs, taken, err := fetch(c, w, req.Connection.Name, mailbox, sel.UIDValidity, uids)
		if err != nil {
			return nil, fail("fetch from", err)
		}
		res.Events = evs
		next.UIDNext = uint32(uids[len(uids)-1]) + 1
		if w.Bool(FieldMarkSeen) || w.String(FieldMoveTo) != "" {
			next.Pending = taken
		}
		changed = true
	}
	if changed {
		res.Next, _ = json.Marshal(next)
	}
	_ = c.Logout().Wait()
	return res, nil
}

// idles reports whether the poller waits in IDLE on this server.
func idles(c *imapclient.Client, w connector.Values) bool {
	on := true
	if v, ok := w[FieldIdle].(bool); ok {
		on = v
	}
	return on && c.Caps().Has(imap.CapIdle)
}

// newUIDs lists the UIDs from uidnext on, ascending. `UID n:*` always
// matches the highest UID, even below n: those are left out.
func newUIDs(c *imapclient.Client, uidnext uint32) ([]imap.UID, error) {
	var set imap.UIDSet
	set.AddRange(imap.UID(max(uidnext, 1)), 0)
	data, err := c.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{set}}, nil).Wait()
	if err != nil {
		return nil, err
	}
	var out []imap.UID
	for _, u := range data.AllUIDs() {
		if uint32(u) >= uidnext {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return out, nil
}

// idle waits in IDLE until the server announces a message, d passes or
// ctx ends (then it returns ctx's error).
func idle(ctx context.Context, c *imapclient.Client, exists <-chan struct{}, d time.Duration) error {
	// an EXISTS that came with an earlier command says nothing new
	select {
	case <-exists:
	default:
	}
	cmd, err := c.Idle()
	if err != nil {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-exists:
	case <-t.C:
	case <-ctx.Done():
		_ = cmd.Close()
		return ctx.Err() // whether or not the server answered DONE first
	}
	if err := cmd.Close(); err != nil {
		return err
	}
	return cmd.Wait()
}

// fetch reads the messages of uids and returns the events of those the
// filters take, with their UIDs.
func fetch(c *imapclient.Client, w connector.Values, conn, mailbox string, validity uint32, uids []imap.UID) ([]connector.Event, []uint32, error) {
	section := &imap.FetchItemBodySection{Peek: true}
	bufs, err := c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, RFC822Size: true,
		BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		return nil, nil, err
	}
	slices.SortFunc(bufs, func(a, b *imapclient.FetchMessageBuffer) int { return int(a.UID) - int(b.UID) })
	limit := w.Int(FieldMaxAttachmentBytes)
	if _, ok := w[FieldMaxAttachmentBytes]; !ok {
		limit = DefaultMaxAttachmentBytes
	}
	var evs []connector.Event
	var taken []uint32
	for _, b := range bufs {
		raw := b.FindBodySection(section)
		m, err := ParseMessage(raw, limit)
		if m == nil {
			// unreadable as a message at all: an event that says so, rather
			// than a message that never starts a run
			m = &Message{To: []string{}, Cc: []string{}, ReplyTo: []string{}, Attachments: []Attachment{}}
			m.Text = fmt.Sprintf("(the message could not be read: %v)", err)
		}
		if !matches(w, m) {
			continue
		}
		p, err := payload(m)
		if err != nil {
			return nil, nil, err
		}
		p["uid"] = int64(b.UID)
		p["uidvalidity"] = int64(validity)
		p["mailbox"] = mailbox
		p["size"] = max(b.RFC822Size, int64(len(raw)))
		evs = append(evs, connector.Event{DedupKey: strconv.FormatUint(uint64(validity), 10) + ":" + strconv.FormatUint(uint64(b.UID), 10),
			Payload: p})
		taken = append(taken, uint32(b.UID))
	}
	return evs, taken, nil
}

// payload is a message as an event's payload: what its JSON decodes to.
func payload(m *Message) (map[string]any, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode the message: %w", err)
	}
	var p map[string]any
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("encode the message: %w", err)
	}
	return p, nil
}

// matches applies the from, subject_contains and has_attachments filters.
func matches(w connector.Values, m *Message) bool {
	if f := strings.ToLower(w.String(FieldFrom)); f != "" &&
		!strings.Contains(strings.ToLower(m.From), f) && !strings.Contains(strings.ToLower(m.FromName), f) {
		return false
	}
	if s := strings.ToLower(w.String(FieldSubjectContains)); s != "" && !strings.Contains(strings.ToLower(m.Subject), s) {
		return false
	}
	if w.Bool(FieldHasAttachments) && len(m.Attachments) == 0 {
		return false
	}
	return true
}

// act applies mark_seen and move_to to the messages of uids.
func act(c *imapclient.Client, w connector.Values, uids []uint32) error {
	set := make([]imap.UID, len(uids))
	for i, u := range uids {
		set[i] = imap.UID(u)
	}
	num := imap.UIDSetNum(set...)
	if w.Bool(FieldMarkSeen) {
		if err := c.Store(num, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close(); err != nil {
			return err
		}
	}
	if to := w.String(FieldMoveTo); to != "" {
		if _, err := c.Move(num, to).Wait(); err != nil {
			return err
		}
	}
	return nil
}
