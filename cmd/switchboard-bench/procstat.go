package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat CPU times; 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// rssKiB reads the resident set size of pid from /proc/PID/status.
func rssKiB(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read gateway memory: %w", err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v) // "123456 kB"
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("read gateway memory: no VmRSS in /proc/%d/status", pid)
}

// procCPU is the user+system CPU time pid has used.
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read gateway CPU: %w", err)
	}
	// The command name may hold spaces and parentheses; fields start after
	// the last ')': state is field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(data, ')')
	f := strings.Fields(string(data[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("read gateway CPU: unexpected /proc/%d/stat", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("read gateway CPU: unexpected /proc/%d/stat", pid)
	}
	return time.Duration(u+s) * time.Second / clockTicks, nil
}

// selfCPU is the CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter measures the cores used by the gateway and by the tool between
// start and stop.
type cpuMeter struct {
	pid        int
	t0         time.Time
	gw0, self0 time.Duration
	gwOK       bool
}

func startCPU(pid int) *cpuMeter {
	m := &cpuMeter{pid: pid, t0: time.Now(), self0: selfCPU()}
	if pid > 0 {
		if c, err := procCPU(pid); err == nil {
			m.gw0, m.gwOK = c, true
		}
	}
	return m
}

func (m *cpuMeter) stop(r *result) {
	el := time.Since(m.t0).Seconds()
	if el <= 0 {
		return
	}
	r.ToolCPU = (selfCPU() - m.self0).Seconds() / el
	if m.gwOK {
		if c, err := procCPU(m.pid); err == nil {
			r.GatewayCPU = (c - m.gw0).Seconds() / el
		}
	}
}
