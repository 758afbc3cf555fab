package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
)

// floor is the HTTP work of one benchmarked event and nothing else: read
// the webhook, decode its JSON, answer 202, POST the rendered body to the
// sink. No store, no queue, no durability: with `-floor`, sous-bench runs
// itself as the server (`sous-bench serve ...`, the arguments sous gets),
// so that the figures show what net/http in and out costs on this machine
// before sous does any of its own work.
func floor(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	recipesDir := fs.String("recipes", "", "the recipes folder sous-bench wrote")
	listen := fs.String("listen", "", "address")
	fs.String("data", "", "ignored")
	fs.String("config", "", "ignored")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(*recipesDir, "bench.yaml"))
	if err != nil {
		return err
	}
	m := regexp.MustCompile(`url: "([^"]+)"`).FindSubmatch(b) // benchrecipes.Order quotes it
	if m == nil {
		return errors.New("no sink url in bench.yaml")
	}
	return http.ListenAndServe(*listen, floorHandler(string(m[1]))) //nolint:gosec // a local benchmark server
}

// floorHandler serves readiness and the benchmark's webhook, delivering
// each event to sink.
func floorHandler(sink string) http.Handler {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256 // as the http.request action's client
	client := &http.Client{Transport: tr}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("POST /hooks/bench", func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Order map[string]any `json:"order"`
		}
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil || ev.Order == nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		out, err := json.Marshal(map[string]any{
			"text":  fmt.Sprintf("Order %v for %v", ev.Order["id"], ev.Order["customer"]),
			"total": fmt.Sprint(ev.Order["total"]),
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"status":"accepted"}`)
		go func() {
			resp, err := client.Post(sink, "application/json", bytes.NewReader(out))
			if err != nil {
				fmt.Fprintln(os.Stderr, "floor:", err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}()
	})
	return mux
}
