package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// result is what one run measured.
type result struct {
	accepted, delivered   float64 // per second
	serverUS, generatorUS float64 // CPU µs per accepted event
	p99                   time.Duration
}

// ratio is the server's CPU per event in units of the generator's: the
// generator does the same work in every run, so the ratio cancels out the
// speed of the virtual machine of the moment, which changes from minute
// to minute by more than most changes to the server.
func (r result) ratio() float64 {
	if r.generatorUS <= 0 {
		return 0
	}
	return r.serverUS / r.generatorUS
}

// compare sums up runs of two binaries taken in turn: the range of each
// figure per binary, and the change of the second binary's mean ratio
// against the first's.
func compare(bins [2]string, results [2][]result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "compare, %d runs each, taken in turn (ratio: server µs per event / generator µs per event)\n", len(results[0]))
	means := [2]float64{}
	for i, rs := range results {
		if len(rs) == 0 {
			continue
		}
		get := func(f func(result) float64) (lo, hi float64) {
			vs := make([]float64, len(rs))
			for k, r := range rs {
				vs[k] = f(r)
			}
			return slices.Min(vs), slices.Max(vs)
		}
		aLo, aHi := get(func(r result) float64 { return r.accepted })
		dLo, dHi := get(func(r result) float64 { return r.delivered })
		sLo, sHi := get(func(r result) float64 { return r.serverUS })
		rLo, rHi := get(result.ratio)
		pLo, pHi := get(func(r result) float64 { return float64(r.p99) })
		for _, r := range rs {
			means[i] += r.ratio()
		}
		means[i] /= float64(len(rs))
		fmt.Fprintf(&b, "  %s: accepted/s %.0f–%.0f, delivered/s %.0f–%.0f, server µs/event %.0f–%.0f, ratio %.2f–%.2f (mean %.2f), p99 %s–%s\n",
			bins[i], aLo, aHi, dLo, dHi, sLo, sHi, rLo, rHi, means[i],
			time.Duration(pLo).Round(10*time.Microsecond), time.Duration(pHi).Round(10*time.Microsecond))
	}
	if means[0] > 0 && means[1] > 0 {
		fmt.Fprintf(&b, "  %s against %s: %+.1f %% server CPU per event (mean ratio)\n", bins[1], bins[0], (means[1]/means[0]-1)*100)
	}
	return b.String()
}
