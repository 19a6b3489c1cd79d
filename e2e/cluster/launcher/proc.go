package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// pidRecord identifies a process we started: the PID plus its start time in
// clock ticks since boot (field 22 of /proc/<pid>/stat), so that a recycled
// PID is never mistaken for one of ours.
type pidRecord struct {
	Name  string
	PID   int
	Start uint64
}

// procStat returns the state letter and start time of a process, or ok=false
// if there is no such process.
func procStat(pid int) (state byte, start uint64, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	// comm (field 2) is in parentheses and may contain spaces: split after it.
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0, 0, false
	}
	fields := strings.Fields(s[i+2:])
	// fields[0] is field 3 (state); start time is field 22 -> fields[19].
	if len(fields) < 20 {
		return 0, 0, false
	}
	st, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return fields[0][0], st, true
}

// alive reports whether the recorded process still runs (zombies count as dead).
func (r pidRecord) alive() bool {
	state, start, ok := procStat(r.PID)
	if !ok || state == 'Z' || state == 'X' {
		return false
	}
	return r.Start == 0 || start == r.Start
}

func pidFile(state, name string) string { return filepath.Join(state, "pids", name+".pid") }

func writePID(state string, r pidRecord) error {
	if err := os.MkdirAll(filepath.Join(state, "pids"), 0o755); err != nil {
		return err
	}
	return os.WriteFile(pidFile(state, r.Name), fmt.Appendf(nil, "%d %d\n", r.PID, r.Start), 0o644)
}

func readPID(state, name string) (pidRecord, bool) {
	b, err := os.ReadFile(pidFile(state, name))
	if err != nil {
		return pidRecord{}, false
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return pidRecord{}, false
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 1 {
		return pidRecord{}, false
	}
	r := pidRecord{Name: name, PID: pid}
	if len(f) > 1 {
		r.Start, _ = strconv.ParseUint(f[1], 10, 64)
	}
	return r, true
}

// running is a process started by this launcher invocation.
type running struct {
	rec  pidRecord
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited (and been reaped)
	err  error         // exit status, valid after done is closed
}

func (p *running) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// startProcess runs bin with args detached in its own session, stdout and
// stderr appended to <state>/logs/<name>.log, and records its PID.
func startProcess(state, name, bin string, args []string) (*running, error) {
	return startProcessEnv(state, name, bin, args, nil)
}

// startProcessEnv is startProcess with extra environment (KEY=VALUE, later wins).
func startProcessEnv(state, name, bin string, args, env []string) (*running, error) {
	return startProcessExact(state, name, bin, args, append(childEnv(), env...))
}

// startProcessExact is startProcess with exactly this environment (a restart
// gives a component the one it had).
func startProcessExact(state, name, bin string, args, env []string) (*running, error) {
	logPath := logFile(state, name)
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	fmt.Fprintf(lf, "=== %s: %s %s\n", time.Now().Format(time.RFC3339), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Dir = state
	cmd.Stdout = lf
	cmd.Stderr = lf
	cmd.Env = env
	// Own session: a Ctrl-C in the terminal reaches only the launcher, which
	// then stops the children itself; in background mode they outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	rec := pidRecord{Name: name, PID: cmd.Process.Pid}
	if _, st, ok := procStat(rec.PID); ok {
		rec.Start = st
	}
	p := &running{rec: rec, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := writePID(state, rec); err != nil {
		_ = syscall.Kill(-rec.PID, syscall.SIGKILL)
		return nil, err
	}
	return p, nil
}

// childEnv is the launcher's environment minus anything that could make a
// component talk to something other than the loopback cluster.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "KUBECONFIG", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "NO_PROXY=127.0.0.1,localhost,::1", "no_proxy=127.0.0.1,localhost,::1")
}

// closeInheritedFDs marks every inherited descriptor above stderr
// close-on-exec so that none leaks into the long-lived components (a leaked
// lock or pipe would otherwise stay held for the cluster's lifetime).
func closeInheritedFDs() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}

func logFile(state, name string) string { return filepath.Join(state, "logs", name+".log") }

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// stopRecords stops the given processes: SIGTERM to each one's process group,
// then SIGKILL to whatever is left after grace, and returns an error naming
// any process that is still alive after that.
func stopRecords(recs []pidRecord, grace time.Duration) error {
	var live []pidRecord
	for _, r := range recs {
		if r.alive() {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return nil
	}
	signalAll := func(sig syscall.Signal) {
		for _, r := range live {
			if !r.alive() {
				continue
			}
			// Each component leads its own session/process group (Setsid).
			if err := syscall.Kill(-r.PID, sig); err != nil {
				_ = syscall.Kill(r.PID, sig)
			}
		}
	}
	waitGone := func(d time.Duration) bool {
		deadline := time.Now().Add(d)
		for {
			all := true
			for _, r := range live {
				if r.alive() {
					all = false
					break
				}
			}
			if all {
				return true
			}
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Stop in the given order (dependents first), but don't wait for each in
	// turn: send TERM to all, then wait once.
	signalAll(syscall.SIGTERM)
	if waitGone(grace) {
		return nil
	}
	for _, r := range live {
		if r.alive() {
			fmt.Fprintf(os.Stderr, "thv-e2e-cluster: %s (pid %d) ignored SIGTERM for %s, sending SIGKILL\n", r.Name, r.PID, grace)
		}
	}
	signalAll(syscall.SIGKILL)
	if waitGone(10 * time.Second) {
		return nil
	}
	var left []string
	for _, r := range live {
		if r.alive() {
			left = append(left, fmt.Sprintf("%s (pid %d)", r.Name, r.PID))
		}
	}
	return errors.New("still running after SIGKILL: " + strings.Join(left, ", "))
}

// strays finds processes that run one of our binaries with an argument that
// mentions the state directory: leftovers whose PID file was lost.
func strays(binDir, state string) []pidRecord {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []pidRecord
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil || filepath.Dir(strings.TrimSuffix(exe, " (deleted)")) != binDir {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !strings.Contains(string(cmdline), state+string(os.PathSeparator)) {
			continue
		}
		st, start, ok := procStat(pid)
		if !ok || st == 'Z' {
			continue
		}
		out = append(out, pidRecord{Name: filepath.Base(exe), PID: pid, Start: start})
	}
	return out
}
