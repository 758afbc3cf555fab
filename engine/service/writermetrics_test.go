package service

import (
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// TestServeWriterMetrics: the embedded store's writer exports each
// transaction's duration and number of writes, which add up to its
// transaction and write counters.
func TestServeWriterMetrics(t *testing.T) {
	sk := newSink(t, 0)
	recipesDir := t.TempDir()
	writeRecipe(t, recipesDir, "orders.yaml", hookRecipe("orders", "/orders", sk.srv.URL, "/x"))
	r := startWith(t, t.TempDir(), recipesDir, testSettings())
	for i := range 5 {
		require.Equal(t, http.StatusAccepted, r.post(t, "/orders", map[string]any{"id": i}))
	}
	require.Eventually(t, func() bool { return len(runsOf(t, r.svc.Store, "orders")) == 5 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, r.stop(t)) // no transaction comes between the reads below

	families, err := r.svc.Metrics.Registry.Gather()
	require.NoError(t, err)
	byName := map[string]*dto.Metric{}
	for _, f := range families {
		if len(f.Metric) == 1 {
			byName[f.GetName()] = f.Metric[0]
		}
	}
	for _, name := range []string{"sous_store_transactions_total", "sous_store_writes_total", "sous_store_transaction_seconds", "sous_store_transaction_writes"} {
		require.Contains(t, byName, name)
	}
	txs := byName["sous_store_transactions_total"].GetCounter().GetValue()
	writes := byName["sous_store_writes_total"].GetCounter().GetValue()
	took := byName["sous_store_transaction_seconds"].GetHistogram()
	size := byName["sous_store_transaction_writes"].GetHistogram()
	require.GreaterOrEqual(t, writes, 10.0, "5 events accepted and 5 runs recorded")
	require.EqualValues(t, txs, took.GetSampleCount(), "one duration per transaction")
	require.EqualValues(t, txs, size.GetSampleCount(), "one size per transaction")
	require.Equal(t, writes, size.GetSampleSum(), "the sizes add up to the writes")
	require.Greater(t, took.GetSampleSum(), 0.0)
}
