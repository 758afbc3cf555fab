package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/sous-run/sous/recipes"
)

// replayThroughServer asks the running `sous serve` for a replay, through
// its REST API, and the server queues it on its broker: on the memory
// broker the queue is in that process's memory, out of the CLI's reach,
// and a replay queued anywhere else would never run; on postgres and nats
// the CLI does not connect to the broker (nor, on nats, to the store of
// the process that ran the run).
func replayThroughServer(ctx context.Context, out io.Writer, cfg *recipes.Config, broker, runID string, fromFailed bool) error {
	reason := "it queues the replay on the broker"
	if broker == "memory" {
		reason = "its queue is in that process's memory"
	}
	why := "a replay on the " + broker + " broker needs the running sous serve (" + reason + "), reached through its REST API"
	if len(cfg.APIKeys) == 0 {
		return &exitError{code: 1, err: fmt.Errorf("%s with a key from api_keys, and %s has none; or POST /api/v1/runs/%s/replay to the server", why, cfg.File, runID)}
	}
	base := serverURL(cfg.Listen)
	target := base + "/api/v1/runs/" + url.PathEscape(runID) + "/replay"
	if fromFailed {
		target += "?from_failed_step=true"
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, nil)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("replay through %s: %w", base, err)}
	}
	req.Header.Set("X-API-Key", cfg.APIKeys[0])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("%s, and none answers at %s (listen in %s): start sous serve with this config, then replay again", why, base, cfg.File)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("replay through %s: %w", base, err)}
	}
	var queued struct {
		RunID string `json:"run_id"`
	}
	if resp.StatusCode == http.StatusAccepted && json.Unmarshal(body, &queued) == nil && queued.RunID != "" {
		fmt.Fprintf(out, "queued %s (a replay of %s) on the server at %s\n", queued.RunID, runID, base)
		return nil
	}
	var apiErr struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	msg := resp.Status
	if json.Unmarshal(body, &apiErr) == nil && apiErr.Error.Message != "" {
		msg = apiErr.Error.Message
	}
	return &exitError{code: 1, err: fmt.Errorf("run %s: the server at %s did not queue a replay: %s", runID, base, msg)}
}

// serverURL is the URL the CLI reaches a server listening on addr at: an
// address on every interface (":8080", "0.0.0.0:8080") is reached on the
// loopback one.
func serverURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
