// Package hosttest is a connector written against the trigger contract
// alone, to show (and test) that a new service needs no engine edit: a
// receiver for the service's webhooks, served at /hooks/hosttest/{connection},
// and a poller over the service's item list. Its tests run both through
// `sous serve`. It is registered by its tests, never by triggers/all.
package hosttest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/httpx"
)

// Names of the connection type, its fields and the triggers' fields.
const (
	ConnectionType  = "hosttest"
	FieldBaseURL    = "base_url"
	FieldSecret     = "secret"
	FieldInterval   = "poll_interval"
	FieldPageSize   = "page_size"
	FieldReply      = "reply"
	FieldOnly       = "only"
	SignatureHeader = "X-Hosttest-Signature"
)

// Connection is the service's connection type: where its API is and the
// secret its webhooks are signed with.
var Connection = &connector.ConnectionSpec{
	Type:    ConnectionType,
	Summary: "The test service of the trigger contract",
	Fields: []connector.Field{
		{Name: FieldBaseURL, Type: connector.String, Required: true, Description: "The service's API root"},
		{Name: FieldSecret, Type: connector.String, Secret: true, Description: "The secret the service signs its webhooks with"},
		connector.TokenField("The service's API token"),
		connector.OAuthField(nil, "", ""),
		connector.RateLimitField("1000/s"),
	},
	OAuth: &connector.OAuthSpec{},
}

// Ping is a trigger received at /hooks/hosttest/{connection}: every recipe
// on the connection sees each ping.
var Ping = &connector.Spec{
	ID: "hosttest.ping", Kind: connector.KindTrigger, Summary: "The service sent a ping",
	Connection: ConnectionType, ConnectionRequired: true,
	Fields: []connector.Field{
		{Name: FieldReply, Type: connector.String, Description: "The answer to the ping's request, when set"},
		{Name: FieldOnly, Type: connector.String, Description: "Only the pings saying this text, when set"},
	},
	Shape: connector.Obj(
		connector.P("id", connector.Leaf(connector.String, "The ping's id")),
		connector.P("text", connector.Leaf(connector.String, "What the ping says")),
	),
	Trigger: &connector.Trigger{Kind: connector.Receive, Key: connector.KeyConnection,
		// a recipe's options filter the pings it sees, as a Slack channel
		Match: func(with connector.Values, ev *connector.Event) bool {
			only := with.String(FieldOnly)
			return only == "" || ev.Payload["text"] == only
		},
		// a recipe's immediate answer, as a slash command's
		Respond: func(with connector.Values, _ *connector.Event) (*connector.Reply, error) {
			if r := with.String(FieldReply); r != "" {
				return connector.JSONReply(http.StatusOK, map[string]string{"text": r})
			}
			return nil, nil
		}},
}

// ItemCreated is a polled trigger: the items created since the last poll.
var ItemCreated = &connector.Spec{
	ID: "hosttest.item_created", Kind: connector.KindTrigger, Summary: "An item was created",
	Connection: ConnectionType, ConnectionRequired: true,
	Fields: []connector.Field{
		{Name: FieldInterval, Type: connector.Duration, Default: "1s", Description: "How often to poll"},
		{Name: FieldPageSize, Type: connector.Int, Default: 100, Description: "Items per poll"},
	},
	Shape: connector.Obj(
		connector.P("id", connector.Leaf(connector.Int, "The item's id, increasing")),
		connector.P("name", connector.Leaf(connector.String, "The item's name")),
	),
	Trigger: &connector.Trigger{Kind: connector.Poll, Key: connector.KeyOptions, Poller: connector.PollerFunc(poll),
		Interval: func(with connector.Values) time.Duration { return with.Duration(FieldInterval) }},
}

// Whoami is an action calling the service through its connection's
// client: GET {base_url}/whoami, whose answer is the output.
var Whoami = &connector.Spec{
	ID: "hosttest.whoami", Kind: connector.KindAction, Summary: "Ask the service who the connection is",
	Connection: ConnectionType, ConnectionRequired: true,
	Shape: connector.Obj(connector.P("name", connector.Leaf(connector.String, "Who the service says the connection is"))),
	Action: connector.ActionFunc(func(ctx context.Context, req *connector.Request) (map[string]any, error) {
		var out struct {
			Name string `json:"name"`
		}
		if err := httpx.CallJSON(ctx, req.Connection.Client, req.Connection.Values, "", http.MethodGet, "whoami", nil, &out); err != nil {
			return nil, err
		}
		return map[string]any{"name": out.Name}, nil
	}),
}

// Register adds the connection type, the triggers, the action and the
// receiver to reg.
func Register(reg *connector.Registry) error {
	if err := reg.AddConnection(Connection); err != nil {
		return err
	}
	for _, s := range []*connector.Spec{Ping, ItemCreated, Whoami} {
		if err := reg.Add(s); err != nil {
			return err
		}
	}
	return reg.AddReceiver(&connector.ReceiverSpec{Service: "hosttest", Connection: ConnectionType, Receiver: connector.ReceiverFunc(receive)})
}

// receive verifies a request's signature with the connection's secret,
// answers the service's challenge itself, and turns a ping into an event.
func receive(_ context.Context, in *connector.Incoming) (*connector.Received, error) {
	if !httpx.ValidSHA256(in.Connection.Values.String(FieldSecret), in.Body, in.Header.Get(SignatureHeader)) {
		return nil, connector.Reject(http.StatusUnauthorized, "bad_signature", "the %s signature does not match the body", SignatureHeader)
	}
	var body struct {
		Type      string `json:"type"`
		Challenge string `json:"challenge"`
		ID        string `json:"id"`
		Text      string `json:"text"`
	}
	if err := json.Unmarshal(in.Body, &body); err != nil {
		return nil, connector.Reject(http.StatusBadRequest, "bad_body", "the body is not valid JSON: %v", err)
	}
	switch body.Type {
	case "challenge":
		reply, err := connector.JSONReply(http.StatusOK, map[string]string{"challenge": body.Challenge})
		return &connector.Received{Reply: reply}, err
	case "ping":
		return &connector.Received{Events: []connector.Event{{Type: Ping.ID, DedupKey: body.ID,
			Payload: map[string]any{"id": body.ID, "text": body.Text}}}}, nil
	}
	return nil, connector.Reject(http.StatusBadRequest, "bad_body", "unknown type %q", body.Type)
}

// item is one item of the service's list.
type item struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// poll lists the items after the cursor (an item id; 0 first), a page at
// a time: GET {base_url}/items?after=N&limit=M answers {"items": [...]}.
func poll(ctx context.Context, req *connector.PollRequest) (*connector.PollResult, error) {
	var after int64
	if len(req.Cursor) > 0 {
		if err := json.Unmarshal(req.Cursor, &after); err != nil {
			return nil, fmt.Errorf("cursor %q: %w", req.Cursor, err)
		}
	}
	limit := req.With.Int(FieldPageSize)
	u := req.Connection.Values.String(FieldBaseURL) + "/items?" + url.Values{
		"after": {strconv.FormatInt(after, 10)}, "limit": {strconv.FormatInt(limit, 10)}}.Encode()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	// the connection's client: its token, its rate limit, its metrics
	resp, err := req.Connection.Client.HTTP.Do(hreq)
	if err != nil {
		return nil, httpx.TransportError(http.MethodGet, hreq.URL, err)
	}
	defer resp.Body.Close()
	raw, err := httpx.ReadBody(resp.Body, 8<<20)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, httpx.StatusError(http.MethodGet, hreq.URL, resp, raw)
	}
	var page struct {
		Items []item `json:"items"`
	}
	if err := json.Unmarshal(raw, &page); err != nil {
		return nil, fmt.Errorf("list items: %w", err)
	}
	res := &connector.PollResult{More: int64(len(page.Items)) == limit}
	for _, it := range page.Items {
		res.Events = append(res.Events, connector.Event{DedupKey: strconv.FormatInt(it.ID, 10),
			Payload: map[string]any{"id": it.ID, "name": it.Name}})
		after = it.ID
	}
	res.Next, _ = json.Marshal(after)
	return res, nil
}
