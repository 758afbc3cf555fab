// Command sous-bench measures the runtime end to end on this machine: it
// starts a child `sous serve` on the embedded SQLite default, POSTs
// webhooks over loopback at a set concurrency to a recipe (webhook ->
// filter -> http.request to a local sink), and reports accepted/s,
// delivered/s, the CPU the server and the generator each used, latency
// percentiles at half load (or at a set rate), and the server's RSS. The senders and the sink
// speak a minimal HTTP/1.1 over raw connections (httpwire.go) so that the
// generator takes little of the machine it shares with the server.
// `make bench` runs it; docs/performance.md records the figures.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sous-run/sous/internal/benchrecipes"
)

func main() {
	var (
		bin         = flag.String("sous", "bin/sous", "the sous binary to run")
		concurrency = flag.Int("c", 64, "concurrent senders")
		duration    = flag.Duration("d", 10*time.Second, "how long to send at full speed")
		extra       = flag.Int("recipes", 10, "recipes loaded besides the benchmarked one (on other paths)")
		keep        = flag.Bool("keep", false, "keep the temporary directory")
		floorOnly   = flag.Bool("floor", false, "measure the floor instead of sous: a bare net/http server doing only this benchmark's HTTP work (floor.go)")
		config      = flag.String("config", "", "sous.yaml lines added to the server's config, e.g. \"broker: {type: memory}\"")
		latRate     = flag.Float64("rate", 0, "events/s of the latency phase (open loop); 0 means half the accepted/s measured")
		vs          = flag.String("vs", "", "another sous binary: run the two in turn -n times each and compare them (compare.go)")
		rounds      = flag.Int("n", 3, "with -vs, how many times each binary runs")
	)
	if len(os.Args) > 1 && os.Args[1] == "serve" { // run as the floor server
		if err := floor(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "sous-bench serve:", err)
			os.Exit(1)
		}
		return
	}
	flag.Parse()
	if *floorOnly {
		self, err := os.Executable()
		if err != nil {
			fmt.Fprintln(os.Stderr, "sous-bench:", err)
			os.Exit(1)
		}
		*bin = self
	}
	if *vs != "" {
		if *rounds < 1 {
			fmt.Fprintln(os.Stderr, "sous-bench: -n must be at least 1")
			os.Exit(2)
		}
		var results [2][]result
		for i := 0; i < *rounds; i++ {
			for j, b := range []string{*bin, *vs} {
				r, err := run(b, *concurrency, *duration, *extra, *keep, *config, *latRate)
				if err != nil {
					fmt.Fprintln(os.Stderr, "sous-bench:", err)
					os.Exit(1)
				}
				results[j] = append(results[j], r)
			}
		}
		fmt.Print(compare([2]string{*bin, *vs}, results))
		return
	}
	if _, err := run(*bin, *concurrency, *duration, *extra, *keep, *config, *latRate); err != nil {
		fmt.Fprintln(os.Stderr, "sous-bench:", err)
		os.Exit(1)
	}
}

func run(bin string, concurrency int, duration time.Duration, extra int, keep bool, config string, latRate float64) (result, error) {
	var res result
	dir, err := os.MkdirTemp("", "sous-bench-")
	if err != nil {
		return res, err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	sinkLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	sink := startSink(sinkLn)
	defer sink.Close()

	recipesDir := filepath.Join(dir, "recipes")
	if err := writeRecipes(recipesDir, "http://"+sinkLn.Addr().String()+"/sink", extra); err != nil {
		return res, err
	}
	port, err := freePort()
	if err != nil {
		return res, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cfgPath := filepath.Join(dir, "sous.yaml")
	if err := os.WriteFile(cfgPath, []byte("log_level: warn\n"+config+"\n"), 0o644); err != nil {
		return res, err
	}
	cmd := exec.Command(bin, "serve", "--recipes", recipesDir, "--data", filepath.Join(dir, "data"), "--listen", addr, "--config", cfgPath)
	cmd.Env = append(os.Environ(), "SOUS_SECRET_BENCH=bench-secret")
	logf, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		return res, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start %s: %w", bin, err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if !keep {
			if err := dropNATSStreams(config); err != nil {
				fmt.Fprintln(os.Stderr, "sous-bench:", err)
			}
		}
	}()
	if err := waitReady("http://"+addr+"/readyz", 20*time.Second); err != nil {
		return res, err
	}
	const path = "/hooks/bench"
	pid := cmd.Process.Pid

	fmt.Printf("sous-bench: %d senders, %s, %d other recipes loaded, server pid %d\n", concurrency, duration, extra, pid)
	// phase 1: full speed
	var seq atomic.Int64
	var total tally
	var mu sync.Mutex
	serverCPU0, err := procCPU(pid)
	if err != nil {
		return res, fmt.Errorf("server cpu: %w", err)
	}
	selfCPU0 := selfCPU()
	start := time.Now()
	deadline := start.Add(duration)
	var wg sync.WaitGroup
	for i := 0; i < concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newRawClient(addr, path)
			c.deadline = deadline.Add(time.Minute)
			defer c.close()
			t := new(tally)
			for time.Now().Before(deadline) {
				status, err := c.post(seq.Add(1))
				t.add(status, err)
				pauseAfter(err)
			}
			mu.Lock()
			total.merge(t)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sendElapsed := time.Since(start)
	acc := total.accepted()
	acceptRate := float64(acc) / sendElapsed.Seconds()
	fmt.Printf("accepted:  %d in %s = %.0f/s (%d refused%s)\n", acc, sendElapsed.Round(time.Millisecond), acceptRate, total.refused(), total.refusedDetail())
	// what is left to deliver drains now: its own figures tell whether a
	// backlog costs more than keeping pace
	drainFrom, drained0 := time.Now(), sink.delivered.Load()
	drainCPU0, drainCPUErr := procCPU(pid)
	drainStore0, _ := storeCounters("http://" + addr + "/metrics")
	// wait for every accepted event to reach the sink (each passes the filter)
	drainDeadline := time.Now().Add(5 * time.Minute)
	for sink.delivered.Load() < acc && time.Now().Before(drainDeadline) {
		time.Sleep(10 * time.Millisecond)
	}
	deliverElapsed := time.Since(start)
	serverCPU1, err := procCPU(pid)
	if err != nil {
		return res, fmt.Errorf("server cpu: %w", err)
	}
	generatorCPU := selfCPU() - selfCPU0
	delivered := sink.delivered.Load()
	fmt.Printf("delivered: %d in %s = %.0f/s end to end\n", delivered, deliverElapsed.Round(time.Millisecond), float64(delivered)/deliverElapsed.Seconds())
	fmt.Println(cpuLine(serverCPU1-serverCPU0, generatorCPU, deliverElapsed, acc))
	res = result{accepted: acceptRate, delivered: float64(delivered) / deliverElapsed.Seconds()}
	if acc > 0 {
		res.serverUS = float64((serverCPU1 - serverCPU0).Microseconds()) / float64(acc)
		res.generatorUS = float64(generatorCPU.Microseconds()) / float64(acc)
	}
	sc, ok := storeCounters("http://" + addr + "/metrics")
	if ok && acc > 0 {
		fmt.Printf("store: %.0f transactions, %.0f writes (%.1f writes per transaction, %.3f transactions per event), writer busy %.0f%% of the time (%.0f µs per event)\n",
			sc.txs, sc.writes, sc.writes/sc.txs, sc.txs/float64(acc), 100*sc.busy/deliverElapsed.Seconds(), 1e6*sc.busy/float64(acc))
	}
	if left := acc - drained0; left > acc/20 && ok && drainCPUErr == nil {
		window := start.Add(deliverElapsed).Sub(drainFrom)
		fmt.Printf("drain: %d left when sending stopped, delivered in %s = %.0f/s, server %.2f cores, %.0f transactions (%.1f writes each), writer busy %.0f%%\n",
			left, window.Round(time.Millisecond), float64(delivered-drained0)/window.Seconds(), (serverCPU1-drainCPU0).Seconds()/window.Seconds(),
			sc.txs-drainStore0.txs, (sc.writes-drainStore0.writes)/max(1, sc.txs-drainStore0.txs), 100*(sc.busy-drainStore0.busy)/window.Seconds())
	}
	rss1 := rss(pid)

	// phase 2: latency at half the measured load (or at -rate), open loop
	rate := acceptRate / 2
	if latRate > 0 {
		rate = latRate
	}
	lat, lt := latency(addr, path, &seq, rate, duration/2, concurrency)
	refused := ""
	if n := lt.refused(); n > 0 {
		refused = fmt.Sprintf(", %d refused%s", n, lt.refusedDetail())
	}
	fmt.Printf("latency at %.0f/s: p50 %s, p99 %s, max %s (%d requests%s)\n", rate, pct(lat, 0.50), pct(lat, 0.99), pct(lat, 1), len(lat), refused)
	fmt.Printf("server RSS: %.1f MB after load, peak %.1f MB\n", float64(rss1)/1e6, float64(peakRSS(pid))/1e6)
	res.p99 = pct(lat, 0.99)
	return res, nil
}

// latency sends at rate for d, open loop: a ticker hands out due times and
// workers*2 workers, each with its own connection, send when they get one. A
// request's latency counts from when it was due, so queueing counts.
func latency(addr, path string, seq *atomic.Int64, rate float64, d time.Duration, workers int) ([]time.Duration, *tally) {
	if rate <= 0 {
		return nil, new(tally)
	}
	interval := time.Duration(float64(time.Second) / rate)
	jobs := make(chan time.Time, 10000)
	var mu sync.Mutex
	var out []time.Duration
	total := new(tally)
	var wg sync.WaitGroup
	for i := 0; i < workers*2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newRawClient(addr, path)
			c.deadline = time.Now().Add(d + time.Minute)
			defer c.close()
			t := new(tally)
			mine := make([]time.Duration, 0, 1024)
			for due := range jobs {
				status, err := c.post(seq.Add(1))
				mine = append(mine, time.Since(due))
				t.add(status, err)
			}
			mu.Lock()
			out = append(out, mine...)
			total.merge(t)
			mu.Unlock()
		}()
	}
	start := time.Now()
	for next := start; next.Before(start.Add(d)); next = next.Add(interval) {
		if w := time.Until(next); w > 0 {
			time.Sleep(w)
		}
		jobs <- next
	}
	close(jobs)
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, total
}

func pct(l []time.Duration, p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	return l[int(p*float64(len(l)-1))].Round(10 * time.Microsecond)
}

func rss(pid int) int64     { return statusField(pid, "VmRSS:") }
func peakRSS(pid int) int64 { return statusField(pid, "VmHWM:") }

func statusField(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field) {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

func waitReady(url string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("server not ready at %s after %s", url, d)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func writeRecipes(dir, sink string, extra int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	main := benchrecipes.Order("bench", "/bench", 100, sink)
	if err := os.WriteFile(filepath.Join(dir, "bench.yaml"), []byte(main), 0o644); err != nil {
		return err
	}
	for i := 0; i < extra; i++ {
		r := benchrecipes.Other(i, sink)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("other-%05d.yaml", i)), []byte(r), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writerCounters are the group-commit writer's counters: transactions,
// writes in them, and the seconds spent from their begins to their commits.
type writerCounters struct{ txs, writes, busy float64 }

// storeCounters reads the group-commit writer's counters from the
// server's Prometheus metrics.
func storeCounters(url string) (writerCounters, bool) {
	resp, err := http.Get(url) //nolint:gosec,noctx // the child server, on loopback
	if err != nil {
		return writerCounters{}, false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return writerCounters{}, false
	}
	return parseWriterCounters(string(body))
}

// parseWriterCounters reads the writer's counters from Prometheus' text
// format; ok is false when the text does not parse or has no transactions.
func parseWriterCounters(text string) (c writerCounters, ok bool) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return c, false
	}
	first := func(name string) *dto.Metric {
		if f := families[name]; f != nil && len(f.GetMetric()) > 0 {
			return f.GetMetric()[0]
		}
		return nil
	}
	c.txs = first("sous_store_transactions_total").GetCounter().GetValue()
	c.writes = first("sous_store_writes_total").GetCounter().GetValue()
	c.busy = first("sous_store_transaction_seconds").GetHistogram().GetSampleSum()
	return c, c.txs > 0
}
