package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

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

// permalink is the message's link.
func permalink(ctx context.Context, api *slack.Client, channel, ts string) (string, error) {
	link, err := api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: channel, Ts: ts})
	return link, sc.Classify("chat.getPermalink", channel, err)
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
	ch, ts, err := api.PostMessageContext(ctx, channel, opts...)
	if err != nil {
		return nil, sc.Classify("chat.postMessage", channel, err)
	}
	link, err := permalink(ctx, api, ch, ts)
	if err != nil {
		return nil, err
	}
	req.Logger.Info("slack message posted", "channel", ch, "ts", ts)
	return map[string]any{"channel": ch, "ts": ts, "permalink": link, "thread_ts": thread}, nil
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
	link, err := permalink(ctx, api, ch, ts)
	if err != nil {
		return nil, err
	}
	return map[string]any{"channel": ch, "ts": ts, "permalink": link, "thread_ts": ""}, nil
}
