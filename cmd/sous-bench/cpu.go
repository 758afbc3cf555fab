package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTicks is sysconf(_SC_CLK_TCK), the unit of /proc/<pid>/stat times:
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// procCPU returns the CPU time (user + system, all threads) that process pid
// has used so far, from /proc/<pid>/stat, with a resolution of 10 ms.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseProcStat(b)
}

// parseProcStat reads utime and stime, fields 14 and 15 of proc_pid_stat(5).
// Field 2, the command name, is in parentheses and may itself hold spaces or
// parentheses, so fields are counted from the last ')'.
func parseProcStat(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no command name")
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields after the command name, want at least 13", len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// cpuLine formats the CPU the server and the generator (this process: senders
// and sink) used over a window, in cores and per event.
func cpuLine(server, generator, window time.Duration, events int64) string {
	per := func(d time.Duration) string {
		if events <= 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.0f µs", float64(d.Microseconds())/float64(events))
	}
	cores := func(d time.Duration) float64 { return d.Seconds() / window.Seconds() }
	return fmt.Sprintf("cpu: server %.2f cores (%s/event), generator %.2f cores (%s/event)",
		cores(server), per(server), cores(generator), per(generator))
}
