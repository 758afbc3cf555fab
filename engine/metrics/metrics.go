// Package metrics holds the runtime's Prometheus metrics.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the runtime's Prometheus collectors, on their own registry.
type Metrics struct {
	Registry       *prometheus.Registry
	Runs           *prometheus.CounterVec   // recipe, status
	StepDuration   *prometheus.HistogramVec // action, status
	StepRetries    *prometheus.CounterVec   // action, reason
	IntakeAccepted *prometheus.CounterVec   // source kind
	IntakeDup      *prometheus.CounterVec   // source kind
	IntakeRejects  *prometheus.CounterVec   // reason
	QueueDepth     *prometheus.GaugeVec     // topic
	Polls          *prometheus.CounterVec   // trigger, outcome
	ConnCalls      *prometheus.CounterVec   // connection, action, status
	ConnWait       *prometheus.CounterVec   // connection, action
	ConnRefreshes  *prometheus.CounterVec   // connection, outcome
}

// New registers the collectors on a fresh registry, with the Go and
// process collectors.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sous_runs_total", Help: "Finished runs by recipe and status.",
		}, []string{"recipe", "status"}),
		StepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sous_step_duration_seconds", Help: "Duration of steps, all attempts included, by action and status.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"action", "status"}),
		StepRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sous_step_retries_total", Help: "Retried step attempts by action and reason.",
		}, []string{"action", "reason"}),
		IntakeAccepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sous_intake_accepted_total", Help: "Events accepted and stored.",
		}, []string{"kind"}),
		IntakeDup: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sous_intake_duplicates_total", Help: "Deliveries answered 2xx as duplicates of an accepted event.",
		}, []string{"kind"}),
		IntakeRejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sous_intake_rejects_total", Help: "Requests refused at intake by reason.",
		}, []string{"reason"}),
		QueueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sous_queue_depth", Help: "Messages waiting or in flight by topic.",
		}, []string{"topic"}),
		Polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sous_polls_total", Help: "Polls by trigger and outcome: ok, error (retried after a backoff) or lease_lost (another process took the poller over; nothing of the poll was stored).",
		}, []string{"trigger", "outcome"}),
		ConnCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sous_connection_calls_total", Help: "Calls to a service through a connection's client, by connection, the action or trigger calling (empty for identity and revocation calls) and HTTP status (error when none came back).",
		}, []string{"connection", "action", "status"}),
		ConnWait: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sous_connection_rate_limit_wait_seconds_total", Help: "Time calls waited for their connection's rate limit, by connection and the action or trigger calling.",
		}, []string{"connection", "action"}),
		ConnRefreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sous_connection_token_refreshes_total", Help: "OAuth token refreshes this process made, by connection and outcome (ok, refused: invalid_grant, error).",
		}, []string{"connection", "outcome"}),
	}
	m.Registry.MustRegister(m.Runs, m.StepDuration, m.StepRetries, m.IntakeAccepted, m.IntakeDup, m.IntakeRejects, m.QueueDepth, m.Polls, m.ConnCalls, m.ConnWait, m.ConnRefreshes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
