package google

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/api/calendar/v3"
	"google.golang.org/api/drive/v3"
)

// The fake's change tracking: Calendar's incremental sync (events.list
// with syncToken, nextPageToken and nextSyncToken; 410 for a token it
// expired) and Drive's changes (changes.getStartPageToken, changes.list
// with pageToken, nextPageToken and newStartPageToken, answered through
// the request's fields mask as Google's partial responses are).

// syncState is what the fake's change feeds hold.
type syncState struct {
	calSeq int                        // the calendars' change counter
	evSeq  map[string]int             // calendar id + "/" + event id: the seq of its last change
	gone   map[string]*calendar.Event // calendar id + "/" + event id: a deleted event, cancelled
	floor  int                        // sync tokens below it are expired (410)
	drive  []driveChange              // Drive's changes; change n is drive[n-1]
}

// driveChange is one change of a Drive file.
type driveChange struct {
	fileID  string
	removed bool
	at      time.Time
}

func newSyncState() syncState {
	return syncState{evSeq: map[string]int{}, gone: map[string]*calendar.Event{}}
}

// Stamp is a time as Google writes created and updated: RFC 3339, UTC,
// milliseconds.
func Stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// touchEvent records a change of an event.
func (f *Fake) touchEvent(cal, id string) {
	f.feeds.calSeq++
	f.feeds.evSeq[cal+"/"+id] = f.feeds.calSeq
	delete(f.feeds.gone, cal+"/"+id)
}

// cancelEvent records an event's deletion: an incremental sync reports
// it with status cancelled.
func (f *Fake) cancelEvent(cal string, ev *calendar.Event) {
	c := *ev
	c.Status = "cancelled"
	c.Updated = Stamp(time.Now())
	f.touchEvent(cal, ev.Id)
	f.feeds.gone[cal+"/"+ev.Id] = &c
}

// ExpireSyncTokens makes every sync token given so far expired: an
// incremental sync with one is answered 410 GONE (fullSyncRequired).
func (f *Fake) ExpireSyncTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.feeds.floor = f.feeds.calSeq + 1
}

// CreateEvent adds an event to a calendar as if someone made it in
// Google Calendar now (an hour-long meeting tomorrow), and returns it.
func (f *Fake) CreateEvent(cal, summary string) *calendar.Event {
	f.mu.Lock()
	f.seq++
	id := fmt.Sprintf("ev%05d", f.seq)
	f.mu.Unlock()
	start := time.Now().UTC().Add(24 * time.Hour).Truncate(time.Hour)
	ev := &calendar.Event{Id: id, Kind: "calendar#event", Status: "confirmed", Summary: summary,
		HtmlLink: "https://www.google.com/calendar/event?eid=" + id, ICalUID: id + "@google.com",
		Start:     &calendar.EventDateTime{DateTime: start.Format(time.RFC3339), TimeZone: "UTC"},
		End:       &calendar.EventDateTime{DateTime: start.Add(time.Hour).Format(time.RFC3339), TimeZone: "UTC"},
		Organizer: &calendar.EventOrganizer{Email: "owner@example.com", Self: true},
		Creator:   &calendar.EventCreator{Email: "owner@example.com", Self: true}}
	f.AddEvent(cal, ev)
	c := *ev
	return &c
}

// UpdateEvent changes an event's summary, as an edit in Google Calendar.
func (f *Fake) UpdateEvent(cal, id, summary string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ev, ok := f.events[cal][id]
	if !ok {
		return
	}
	c := *ev
	c.Summary, c.Updated = summary, Stamp(time.Now())
	f.events[cal][id] = &c
	f.touchEvent(cal, id)
}

// DeleteEvent deletes an event, as in Google Calendar.
func (f *Fake) DeleteEvent(cal, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ev, ok := f.events[cal][id]
	if !ok {
		return
	}
	delete(f.events[cal], id)
	f.deleted[cal+"/"+id] = true
	f.cancelEvent(cal, ev)
}

// syncForbidden are the events.list parameters a syncToken cannot be
// combined with.
var syncForbidden = []string{"timeMin", "timeMax", "updatedMin", "q", "orderBy", "iCalUID",
	"privateExtendedProperty", "sharedExtendedProperty"}

// syncEvents answers an incremental sync: the events changed since the
// token (deleted ones cancelled), in pages whose token keeps the sync's
// end and the last change given, the last page with nextSyncToken. An
// event changed again while the pages are read moves past the sync's end
// and comes in the next sync, and the pages after it lose none of the
// others (Google's pages are as stable).
func (f *Fake) syncEvents(w http.ResponseWriter, r *http.Request, cal string) {
	q := r.URL.Query()
	for _, k := range syncForbidden {
		if q.Has(k) {
			f.problem(w, "list events: syncToken with %s", k)
			return
		}
	}
	from, err := strconv.Atoi(strings.TrimPrefix(q.Get("syncToken"), "sync"))
	if err != nil || !strings.HasPrefix(q.Get("syncToken"), "sync") {
		gerror(w, http.StatusBadRequest, "invalid", "Invalid sync token value.")
		return
	}
	if from < f.feeds.floor || from > f.feeds.calSeq {
		gerror(w, http.StatusGone, "fullSyncRequired", "Sync token is no longer valid, a full sync is required.")
		return
	}
	upto, after := f.feeds.calSeq, from
	if pt := q.Get("pageToken"); pt != "" {
		if _, err := fmt.Sscanf(pt, "sp%d_%d", &after, &upto); err != nil || upto > f.feeds.calSeq || after < from || after > upto {
			f.problem(w, "list events: pageToken %q", pt)
			return
		}
	}
	type changed struct {
		seq int
		ev  *calendar.Event
	}
	var all []changed
	for key, seq := range f.feeds.evSeq {
		cid, id, _ := strings.Cut(key, "/")
		if cid != cal || seq <= after || seq > upto {
			continue
		}
		if ev, ok := f.events[cal][id]; ok {
			all = append(all, changed{seq, ev})
		} else if ev, ok := f.feeds.gone[key]; ok {
			all = append(all, changed{seq, ev})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].seq < all[j].seq })
	size := 250
	if n, err := strconv.Atoi(q.Get("maxResults")); err == nil && n > 0 {
		size = n
	}
	if f.MaxPage > 0 && size > f.MaxPage {
		size = f.MaxPage
	}
	out := &calendar.Events{Kind: "calendar#events", Summary: cal, Items: []*calendar.Event{}}
	for i := 0; i < len(all) && i < size; i++ {
		out.Items = append(out.Items, all[i].ev)
	}
	if size < len(all) {
		out.NextPageToken = fmt.Sprintf("sp%d_%d", all[size-1].seq, upto)
	} else {
		out.NextSyncToken = "sync" + strconv.Itoa(upto)
	}
	writeJSON(w, out)
}

// changed records a change of a Drive file.
func (f *Fake) changed(id string, removed bool) {
	f.feeds.drive = append(f.feeds.drive, driveChange{fileID: id, removed: removed, at: time.Now()})
}

// NewFile makes a file as if someone uploaded it to Drive now, and
// returns it.
func (f *Fake) NewFile(name, mimeType string, parents []string, content []byte) *drive.File {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.newFile(drive.File{Name: name, MimeType: mimeType, Parents: parents}, content).File
	return &c
}

// TrashFile moves a file to the trash.
func (f *Fake) TrashFile(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if file, ok := f.files[id]; ok {
		file.Trashed = true
		file.ModifiedTime = Stamp(time.Now())
		f.changed(id, false)
	}
}

// RemoveFile deletes a file for good: a change with removed true.
func (f *Fake) RemoveFile(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.files[id]; ok {
		delete(f.files, id)
		f.changed(id, true)
	}
}

func (f *Fake) startPageToken(w http.ResponseWriter) {
	writeJSON(w, &drive.StartPageToken{Kind: "drive#startPageToken", StartPageToken: strconv.Itoa(len(f.feeds.drive) + 1)})
}

// listChanges answers changes.list: the changes from pageToken on, a
// page at a time (pageSize, 100 by default), nextPageToken while more
// remain, else newStartPageToken; through the fields mask, which the
// request must carry.
func (f *Fake) listChanges(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, err := strconv.Atoi(q.Get("pageToken"))
	if q.Get("pageToken") == "" {
		f.problem(w, "list changes: no pageToken")
		return
	}
	if err != nil || from < 1 || from > len(f.feeds.drive)+1 {
		gerror(w, http.StatusBadRequest, "invalid", "Invalid Value")
		return
	}
	fields := q.Get("fields")
	if fields == "" {
		f.problem(w, "list changes: no fields mask (the changes come without their files' details)")
		return
	}
	mask, err := parseMask(fields)
	if err != nil {
		gerror(w, http.StatusBadRequest, "invalidParameter", "Invalid field selection "+fields)
		return
	}
	size := 100
	if n, err := strconv.Atoi(q.Get("pageSize")); err == nil && n > 0 && n <= 1000 {
		size = n
	}
	if f.MaxPage > 0 && size > f.MaxPage {
		size = f.MaxPage
	}
	out := &drive.ChangeList{Kind: "drive#changeList", Changes: []*drive.Change{}}
	i := from - 1
	for ; i < len(f.feeds.drive) && i < from-1+size; i++ {
		c := f.feeds.drive[i]
		ch := &drive.Change{Kind: "drive#change", ChangeType: "file", FileId: c.fileID, Removed: c.removed,
			Time: Stamp(c.at)}
		if file, ok := f.files[c.fileID]; ok && !c.removed {
			fc := file.File
			ch.File = &fc
		}
		if c.removed && q.Get("includeRemoved") == "false" {
			continue
		}
		out.Changes = append(out.Changes, ch)
	}
	if i < len(f.feeds.drive) {
		out.NextPageToken = strconv.Itoa(i + 1)
	} else {
		out.NewStartPageToken = strconv.Itoa(len(f.feeds.drive) + 1)
	}
	b, _ := json.Marshal(out)
	var v any
	_ = json.Unmarshal(b, &v)
	writeJSON(w, mask.apply(v))
}

// mask is a partial response's fields selection: nil selects all.
type mask map[string]mask

// parseMask reads a fields parameter: names, name(sub,...) and *.
func parseMask(s string) (mask, error) {
	m, rest, err := parseMaskList(s)
	if err != nil {
		return nil, err
	}
	if rest != "" {
		return nil, fmt.Errorf("unexpected %q", rest)
	}
	return m, nil
}

func parseMaskList(s string) (mask, string, error) {
	m := mask{}
	for {
		s = strings.TrimSpace(s)
		end := strings.IndexAny(s, ",()")
		name := s
		if end >= 0 {
			name = s[:end]
		}
		name = strings.TrimSpace(name)
		if name == "" {
			return nil, s, fmt.Errorf("empty field name")
		}
		if end < 0 {
			m[name] = nil
			return m, "", nil
		}
		s = s[end:]
		if s[0] == '(' {
			sub, rest, err := parseMaskList(s[1:])
			if err != nil {
				return nil, "", err
			}
			if rest == "" || rest[0] != ')' {
				return nil, "", fmt.Errorf("unclosed (")
			}
			m[name] = sub
			s = rest[1:]
		} else {
			m[name] = nil
		}
		if s == "" || s[0] == ')' {
			return m, s, nil
		}
		s = s[1:] // ,
	}
}

// apply keeps what the mask selects of v.
func (m mask) apply(v any) any {
	if m == nil {
		return v
	}
	if _, all := m["*"]; all {
		return v
	}
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, sub := range m {
			if val, ok := x[k]; ok {
				out[k] = sub.apply(val)
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = m.apply(e)
		}
		return out
	default:
		return v
	}
}
