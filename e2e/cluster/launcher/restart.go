package main

// restart: kill control-plane components of a running cluster and start them
// again as they ran (same binary, arguments and environment, read from /proc
// before the kill), for the chaos suite's "API server and etcd restarted" row.
//
//	thv-e2e-cluster restart --state DIR --bin DIR --components etcd,kube-apiserver [--signal KILL|TERM] [--down 2s]

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"
)

// restartable: the components whose restart the cluster survives as a real
// one would (the node's components carry mounts and pod state).
var restartable = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}

// restartReport is printed as one JSON line, for tests to read.
type restartReport struct {
	Components []string `json:"components"`
	Signal     string   `json:"signal"`
	// From the signal to every named process gone, to the starts, and to the
	// API server answering /readyz again.
	GoneSeconds    float64 `json:"goneSeconds"`
	StartedSeconds float64 `json:"startedSeconds"`
	ReadySeconds   float64 `json:"readySeconds"`
}

// procArgs reads a live process's argv and environment.
func procArgs(pid int) (argv, env []string, err error) {
	split := func(b []byte) []string {
		var out []string
		for _, f := range bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0}) {
			out = append(out, string(f))
		}
		return out
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, nil, err
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return nil, nil, err
	}
	argv = split(cmdline)
	if len(argv) == 0 || argv[0] == "" {
		return nil, nil, fmt.Errorf("pid %d has no command line (exited?)", pid)
	}
	return argv, split(environ), nil
}

func restart(o options, names []string, sig syscall.Signal, down time.Duration) error {
	st, err := loadState(o.state)
	if err != nil {
		return fmt.Errorf("no cluster in %s: %w", o.state, err)
	}
	type target struct {
		rec       pidRecord
		argv, env []string
	}
	var targets []target
	for _, name := range names {
		if !slices.Contains(restartable, name) {
			return fmt.Errorf("%q cannot be restarted (one of: %s)", name, strings.Join(restartable, ", "))
		}
		rec, ok := readPID(o.state, name)
		if !ok || !rec.alive() {
			return fmt.Errorf("%s is not running", name)
		}
		argv, env, err := procArgs(rec.PID)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		targets = append(targets, target{rec, argv, env})
	}
	begin := time.Now()
	for _, t := range targets {
		say("sending SIG%s to %s (pid %d)", sigName(sig), t.rec.Name, t.rec.PID)
		if err := syscall.Kill(-t.rec.PID, sig); err != nil {
			_ = syscall.Kill(t.rec.PID, sig)
		}
	}
	var recs []pidRecord
	for _, t := range targets {
		recs = append(recs, t.rec)
	}
	// Whatever ignores a TERM for 15 s gets a KILL (stopRecords' rule).
	if err := stopRecords(recs, 15*time.Second); err != nil {
		return err
	}
	report := restartReport{Components: names, Signal: sigName(sig), GoneSeconds: time.Since(begin).Seconds()}
	time.Sleep(down)
	// Start in the cluster's start order: etcd before the API server.
	slices.SortStableFunc(targets, func(a, b target) int {
		return slices.Index(componentOrder, a.rec.Name) - slices.Index(componentOrder, b.rec.Name)
	})
	for _, t := range targets {
		say("starting %s again (log: %s)", t.rec.Name, logFile(o.state, t.rec.Name))
		if _, err := startProcessExact(o.state, t.rec.Name, t.argv[0], t.argv[1:], t.env); err != nil {
			return err
		}
	}
	report.StartedSeconds = time.Since(begin).Seconds()
	api, err := adminClient(o.state, st)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err = waitFor(ctx, "the API server to answer /readyz", 3*time.Minute, nil, func(ctx context.Context) error {
		_, err := api.do(ctx, "GET", "/readyz", nil, nil)
		return err
	})
	if err != nil {
		return err
	}
	report.ReadySeconds = time.Since(begin).Seconds()
	say("%s restarted; the API server is ready again %.1fs after the signal", strings.Join(names, ", "), report.ReadySeconds)
	line, _ := json.Marshal(report)
	fmt.Println(string(line))
	return nil
}

func sigName(sig syscall.Signal) string {
	if sig == syscall.SIGKILL {
		return "KILL"
	}
	return "TERM"
}

func parseSignal(s string) (syscall.Signal, error) {
	switch strings.TrimPrefix(strings.ToUpper(s), "SIG") {
	case "KILL", "9":
		return syscall.SIGKILL, nil
	case "TERM", "15":
		return syscall.SIGTERM, nil
	}
	return 0, errors.New("--signal must be KILL or TERM")
}
