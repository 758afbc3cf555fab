package slack

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

// The kinds of request Slack sends to an app's request URLs.
const (
	KindURLVerification = "url_verification"
	KindEvent           = "event"
	KindRateLimited     = "app_rate_limited"
	KindSlashCommand    = "slash_command"
	KindInteraction     = "interaction"
	// KindSSLCheck is the ssl_check=1 POST Slack sends a slash command's
	// URL to check its certificate; it wants a 200.
	KindSSLCheck = "ssl_check"
)

// Delivery is one request from Slack, parsed: the Events API (an event, the
// url_verification handshake, an app_rate_limited notice), a slash command
// (or its URL's ssl_check) or an interaction (block actions, shortcuts,
// view submissions).
type Delivery struct {
	Kind string
	// Challenge is url_verification's challenge.
	Challenge string
	// Type is the inner event's type (message, reaction_added, ...) for
	// an event, and the interaction's type (block_actions, shortcut,
	// message_action, view_submission, ...) for an interaction.
	Type string
	// DedupKey is stable across Slack's redeliveries: the event_id of an
	// event, the trigger_id of a slash command or interaction ("" when it
	// has none).
	DedupKey string
	// Payload is the event as recipes see it (see the triggers' shapes);
	// Slack's verification token is left out.
	Payload map[string]any
}

// ParseRequest parses a verified request by its content: JSON for the
// Events API, a form for slash commands, a form with `payload` for
// interactions. retry is the request's headers, whose X-Slack-Retry-Num
// and X-Slack-Retry-Reason an event records as retry_num and
// retry_reason.
func ParseRequest(h http.Header, body []byte) (*Delivery, error) {
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		return ParseEvents(body, h)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("the body is neither JSON nor a form: %w", err)
	}
	if form.Get("ssl_check") == "1" {
		return &Delivery{Kind: KindSSLCheck}, nil
	}
	if form.Has("payload") {
		return ParseInteraction(form.Get("payload"))
	}
	return ParseSlashCommand(form)
}

// ParseEvents parses an Events API body (JSON).
func ParseEvents(body []byte, h http.Header) (*Delivery, error) {
	var outer slackevents.EventsAPICallbackEvent
	if err := json.Unmarshal(body, &outer); err != nil {
		return nil, fmt.Errorf("the body is not an Events API request: %w", err)
	}
	switch outer.Type {
	case slackevents.URLVerification:
		var v slackevents.EventsAPIURLVerificationEvent
		if err := json.Unmarshal(body, &v); err != nil || v.Challenge == "" {
			return nil, errors.New("url_verification without a challenge")
		}
		return &Delivery{Kind: KindURLVerification, Challenge: v.Challenge}, nil
	case slackevents.AppRateLimited:
		return &Delivery{Kind: KindRateLimited}, nil
	case slackevents.CallbackEvent:
	case "":
		return nil, errors.New("the body has no type")
	default:
		return nil, fmt.Errorf("unknown Events API request type %q", outer.Type)
	}
	if outer.InnerEvent == nil {
		return nil, errors.New("event_callback without an event")
	}
	var inner map[string]any
	if err := json.Unmarshal(*outer.InnerEvent, &inner); err != nil || inner == nil {
		return nil, errors.New("event_callback whose event is not an object")
	}
	typ, _ := inner["type"].(string)
	if typ == "" {
		return nil, errors.New("event_callback whose event has no type")
	}
	if outer.EventID == "" {
		return nil, errors.New("event_callback without an event_id")
	}
	p := inner
	p["event_id"] = outer.EventID
	p["event_time"] = outer.EventTime
	p["team_id"] = outer.TeamID
	p["api_app_id"] = outer.APIAppID
	if outer.EnterpriseID != "" {
		p["enterprise_id"] = outer.EnterpriseID
	}
	p["is_ext_shared_channel"] = outer.IsExtSharedChannel
	n, _ := strconv.Atoi(h.Get(HeaderRetryNum))
	p["retry_num"] = n
	p["retry_reason"] = h.Get(HeaderRetryCause)
	return &Delivery{Kind: KindEvent, Type: typ, DedupKey: outer.EventID, Payload: p}, nil
}

// slashFields are the fields of a slash command's form that its event
// keeps (Slack's verification token is not one).
var slashFields = []string{"team_id", "team_domain", "enterprise_id", "enterprise_name", "channel_id", "channel_name",
	"user_id", "user_name", "command", "text", "response_url", "trigger_id", "api_app_id", "is_enterprise_install"}

// ParseSlashCommand parses a slash command's form.
func ParseSlashCommand(form url.Values) (*Delivery, error) {
	if form.Get("command") == "" {
		return nil, errors.New("the form has no command (nor an interaction's payload)")
	}
	p := make(map[string]any, len(slashFields))
	for _, k := range slashFields {
		p[k] = form.Get(k)
	}
	return &Delivery{Kind: KindSlashCommand, Type: KindSlashCommand, DedupKey: form.Get("trigger_id"), Payload: p}, nil
}

// ParseInteraction parses an interaction's `payload` JSON (as
// slack.InteractionCallback), keeping it as sent but for the token, with
// three keys added for filters: action_id and action_value (the first
// block action's), and callback_id from the view when the payload has
// none at the top.
func ParseInteraction(payload string) (*Delivery, error) {
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(payload), &cb); err != nil {
		return nil, fmt.Errorf("the interaction payload is not valid: %w", err)
	}
	if cb.Type == "" {
		return nil, errors.New("the interaction payload has no type")
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(payload), &p); err != nil || p == nil {
		return nil, errors.New("the interaction payload is not an object")
	}
	delete(p, "token")
	actionID, value := cb.ActionID, cb.Value
	if acts := cb.ActionCallback.BlockActions; len(acts) > 0 && acts[0] != nil {
		actionID, value = acts[0].ActionID, acts[0].Value
		if value == "" {
			value = acts[0].SelectedOption.Value
		}
	}
	if acts, _ := p["actions"].([]any); actionID == "" && len(acts) > 0 {
		// an action slack-go did not take for a block action (no type)
		if a, ok := acts[0].(map[string]any); ok {
			actionID, _ = a["action_id"].(string)
			value, _ = a["value"].(string)
		}
	}
	p["action_id"] = actionID
	p["action_value"] = value
	if cb.CallbackID == "" {
		p["callback_id"] = cb.View.CallbackID
	}
	return &Delivery{Kind: KindInteraction, Type: string(cb.Type), DedupKey: cb.TriggerID, Payload: p}, nil
}

// Str is the string at a dotted path of a payload ("" when absent).
func Str(p map[string]any, path string) string {
	var cur any = p
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = m[k]
	}
	s, _ := cur.(string)
	return s
}
