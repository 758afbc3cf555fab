package slack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/slack-go/slack"

	"github.com/sous-run/sous/engine/connector"
	sc "github.com/sous-run/sous/internal/clients/slack"
)

// content is a step's text and blocks as slack-go message options.
func content(w connector.Values) ([]slack.MsgOption, error) {
	text := w.String(FieldText)
	var opts []slack.MsgOption
	if raw, ok := w[FieldBlocks].([]any); ok && len(raw) > 0 {
		b, err := json.Marshal(raw)
		if err != nil {
			return nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("blocks: %w", err))
		}
		var blocks slack.Blocks
		if err := json.Unmarshal(b, &blocks); err != nil {
			return nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("blocks are not Block Kit blocks: %w", err))
		}
		opts = append(opts, slack.MsgOptionBlocks(blocks.BlockSet...))
	} else if text == "" {
		return nil, connector.Permanent(connector.ReasonInvalid, errors.New("give text or blocks"))
	}
	if text != "" {
		opts = append(opts, slack.MsgOptionText(text, false))
	}
	return opts, nil
}

// permalink is the message's link, best effort: the message is posted
// already, so a failed chat.getPermalink is logged and gives "".
func permalink(ctx context.Context, api *slack.Client, log *slog.Logger, channel, ts string) string {
	link, err := api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: channel, Ts: ts})
	if err != nil {
		if log != nil {
			log.Warn("slack: no permalink for the message; output permalink is empty", "channel", channel, "ts", ts,
				"error", sc.Classify("chat.getPermalink", channel, err))
		}
		return ""
	}
	return link
}

func postMessage(ctx context.Context, req *connector.Request) (map[string]any, error) {
	api, err := sc.NewAPI(req.Connection)
	if err != nil {
		return nil, err
	}
	w := req.With
	opts, err := content(w)
	if err != nil {
		return nil, err
	}
	thread := w.String(FieldThreadTS)
	if thread != "" {
		opts = append(opts, slack.MsgOptionTS(thread))
		if w.Bool(FieldReplyBroadcast) {
			opts = append(opts, slack.MsgOptionBroadcast())
		}
	}
	if w.Has(FieldUnfurlLinks) {
		if w.Bool(FieldUnfurlLinks) {
			opts = append(opts, slack.MsgOptionEnableLinkUnfurl())
		} else {
			opts = append(opts, slack.MsgOptionDisableLinkUnfurl())
		}
	}
	if w.Has(FieldUnfurlMedia) && !w.Bool(FieldUnfurlMedia) {
		opts = append(opts, slack.MsgOptionDisableMediaUnfurl())
	}
	channel := w.String(FieldChannel)
	existed := false
	var ch, ts string
	if req.IdempotencyKey != "" {
		tag := StepTag(req.IdempotencyKey)
		opts = append(opts, slack.MsgOptionMetadata(slack.SlackMetadata{EventType: MetadataEventType,
			EventPayload: map[string]any{MetadataKey: tag}}))
		if req.Attempt > 1 {
			ch, ts, existed = findPosted(ctx, api, req.Logger, channel, thread, tag)
		}
	}
	if !existed {
		ch, ts, err = api.PostMessageContext(ctx, channel, opts...)
		if err != nil {
			return nil, sc.Classify("chat.postMessage", channel, err)
		}
	}
	link := permalink(ctx, api, req.Logger, ch, ts)
	if req.Logger != nil {
		req.Logger.Info("slack message posted", "channel", ch, "ts", ts, "existed", existed)
	}
	return map[string]any{"channel": ch, "ts": ts, "permalink": link, "thread_ts": thread, "existed": existed}, nil
}

// The metadata every posted message carries: event type MetadataEventType,
// its payload's MetadataKey the step's tag (StepTag).
const (
	MetadataEventType = "sous_step"
	MetadataKey       = "step"
)

// findPages bounds the search for a retried post's first message: pages
// of findPageSize messages, newest first (1,000 messages of the channel,
// or of the thread).
const (
	findPages    = 5
	findPageSize = 200
)

// StepTag is the tag of a step's messages: its idempotency key, hashed
// (the run id stays out of Slack).
func StepTag(key string) string {
	sum := sha256.Sum256([]byte("sous-slack:" + key))
	return hex.EncodeToString(sum[:16])
}

// findPosted looks for the message an earlier attempt of the step posted
// (its answer lost): in the channel's recent history, or the thread's
// replies, by the metadata tag. When the search cannot be made (no
// channels:history scope, a channel not joined) it logs why and reports
// none, and the step posts: a possible second message rather than none.
func findPosted(ctx context.Context, api *slack.Client, log *slog.Logger, channel, thread, tag string) (string, string, bool) {
	id, err := sc.ResolveChannel(ctx, api, channel)
	cursor := ""
	for page := 0; err == nil && page < findPages; page++ {
		var msgs []slack.Message
		more := false
		if thread != "" {
			msgs, more, cursor, err = api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{
				ChannelID: id, Timestamp: thread, Cursor: cursor, Limit: findPageSize, IncludeAllMetadata: true})
			err = sc.Classify("conversations.replies", channel, err)
		} else {
			var resp *slack.GetConversationHistoryResponse
			resp, err = api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
				ChannelID: id, Cursor: cursor, Limit: findPageSize, IncludeAllMetadata: true})
			if err = sc.Classify("conversations.history", channel, err); err == nil {
				msgs, more, cursor = resp.Messages, resp.HasMore, resp.ResponseMetaData.NextCursor
			}
		}
		for _, m := range msgs {
			if m.Metadata.EventType == MetadataEventType && fmt.Sprint(m.Metadata.EventPayload[MetadataKey]) == tag {
				return id, m.Timestamp, true
			}
		}
		if err != nil || !more || cursor == "" {
			break
		}
	}
	if err != nil && log != nil {
		log.Warn("slack: cannot look for the message an earlier attempt may have posted; posting", "channel", channel, "error", err)
	}
	return "", "", false
}

func updateMessage(ctx context.Context, req *connector.Request) (map[string]any, error) {
	api, err := sc.NewAPI(req.Connection)
	if err != nil {
		return nil, err
	}
	w := req.With
	opts, err := content(w)
	if err != nil {
		return nil, err
	}
	channel := w.String(FieldChannel)
	id, err := sc.ResolveChannel(ctx, api, channel)
	if err != nil {
		return nil, err
	}
	ch, ts, _, err := api.UpdateMessageContext(ctx, id, w.String(FieldTS), opts...)
	if err != nil {
		return nil, sc.Classify("chat.update", channel, err)
	}
	link := permalink(ctx, api, req.Logger, ch, ts)
	return map[string]any{"channel": ch, "ts": ts, "permalink": link, "thread_ts": ""}, nil
}
