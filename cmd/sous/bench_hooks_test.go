package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sous-run/sous/engine/store"
	sc "github.com/sous-run/sous/internal/clients/slack"
	zc "github.com/sous-run/sous/internal/clients/zoom"
	"github.com/sous-run/sous/internal/httpx"
)

// BenchmarkServiceWebhooks: deliveries per second through one `sous
// serve` (embedded store), each verified and stored before it is
// answered, for a plain signed webhook.received and for Slack's and
// Zoom's webhooks (their signature schemes, their JSON, their dedup keys,
// and the options their recipes filter by), on the same run. Every
// delivery is new (a distinct id) and starts one run, whose filter ends
// it at once: the cost measured is intake's. The figures and their ratio
// are in docs/performance.md.
func BenchmarkServiceWebhooks(b *testing.B) {
	const (
		hookSecret  = "bench-webhook-secret-0123456789"
		slackSecret = "bench-slack-signing-secret-0123"
		zoomSecret  = "bench-zoom-secret-token-0123456"
	)
	bin := buildSous(b)
	tmp := b.TempDir()
	recipesDir := filepath.Join(tmp, "recipes")
	writeFile(b, recipesDir, "hook.yaml", `version: 1
name: hook
trigger: {type: webhook.received, with: {path: /bench, secret: "{{ secrets.BENCH_HOOK }}", id: "event.body.id"}}
filter: event.body.id == "never"
steps: [{id: s, action: http.request, with: {url: "http://127.0.0.1:9/"}}]
`)
	writeFile(b, recipesDir, "slack.yaml", `version: 1
name: slack
trigger: {type: slack.message, connection: slack, with: {channel: C0BENCH}}
filter: event.text == "never"
steps: [{id: s, action: http.request, with: {url: "http://127.0.0.1:9/"}}]
`)
	writeFile(b, recipesDir, "zoom.yaml", `version: 1
name: zoom
trigger: {type: zoom.meeting_ended, connection: zoom}
filter: event.event == "never"
steps: [{id: s, action: http.request, with: {url: "http://127.0.0.1:9/"}}]
`)
	addr := freeAddr(b)
	base := "http://" + addr
	config := writeFile(b, tmp, "sous.yaml", fmt.Sprintf(`listen: %s
data_dir: %s
recipes: %s
log_level: warn
connections:
  slack: {type: slack, token: xoxb-bench, signing_secret: %s}
  zoom: {type: zoom, webhook_secret: %s}
`, addr, filepath.Join(tmp, "data"), recipesDir, slackSecret, zoomSecret))
	c := startChild(b, bin, filepath.Join(tmp, "serve.log"), []string{"SOUS_SECRET_BENCH_HOOK=" + hookSecret}, "serve", "--config", config)
	waitReady(b, base, c)

	var seq atomic.Int64
	kinds := []struct {
		name string
		req  func(n int64, now time.Time) (string, http.Header, []byte)
	}{
		{"webhook", func(n int64, _ time.Time) (string, http.Header, []byte) {
			body := []byte(`{"id":"h` + strconv.FormatInt(n, 10) + `","order":{"total":12.5,"lines":[{"sku":"A1","qty":2}]}}`)
			return "/hooks/bench", http.Header{"Content-Type": {"application/json"},
				"X-Signature-256": {httpx.SignSHA256(hookSecret, body)}}, body
		}},
		{"slack", func(n int64, now time.Time) (string, http.Header, []byte) {
			id := strconv.FormatInt(n, 10)
			body := []byte(`{"token":"x","team_id":"T0BENCH","api_app_id":"A0BENCH","event":{"type":"message","user":"U0BENCH","text":"hello ` + id +
				`","ts":"1700000000.` + id + `","channel":"C0BENCH","event_ts":"1700000000.` + id + `","channel_type":"channel"},"type":"event_callback","event_id":"Ev` + id +
				`","event_time":1700000000,"authed_users":["U0BENCH"]}`)
			ts := strconv.FormatInt(now.Unix(), 10)
			return "/hooks/slack/slack", http.Header{"Content-Type": {"application/json"},
				sc.HeaderTimestamp: {ts}, sc.HeaderSignature: {sc.Sign(slackSecret, ts, body)}}, body
		}},
		{"zoom", func(n int64, now time.Time) (string, http.Header, []byte) {
			id := strconv.FormatInt(n, 10)
			body := []byte(`{"event":"meeting.ended","event_ts":1626230691572,"payload":{"account_id":"acc","object":{"id":"` + id +
				`","uuid":"u` + id + `==","host_id":"h","topic":"Standup","type":2,"start_time":"2021-07-13T21:44:51Z","timezone":"UTC","duration":15,"end_time":"2021-07-13T22:00:00Z"}}}`)
			return "/hooks/zoom/zoom", zc.SignedHeader(zoomSecret, body, now), body
		}},
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			const senders = 32
			var next atomic.Int64
			var failed atomic.Value
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						path, h, body := k.req(seq.Add(1), time.Now())
						req, _ := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(body))
						req.Header = h
						resp, err := client.Do(req)
						if err != nil {
							failed.Store(err.Error())
							return
						}
						got, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK || bytes.Contains(got, []byte(`"ignored"`)) ||
							bytes.Contains(got, []byte(`"duplicate"`)) {
							failed.Store(fmt.Sprintf("%s answered %d %s", path, resp.StatusCode, got))
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			if f := failed.Load(); f != nil {
				b.Fatal(f)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
		})
	}
	// every delivery was stored: the answers were not empty promises
	write, read, err := store.OpenSQLite(context.Background(), filepath.Join(tmp, "data"))
	if err != nil {
		b.Fatal(err)
	}
	defer write.Close()
	defer read.Close()
	var stored int64
	if err := read.QueryRow(`SELECT count(*) FROM events`).Scan(&stored); err != nil {
		b.Fatal(err)
	}
	if stored != seq.Load() {
		b.Fatalf("%d deliveries answered, %d events stored", seq.Load(), stored)
	}
}
