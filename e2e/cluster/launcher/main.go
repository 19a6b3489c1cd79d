// Command thv-e2e-cluster starts and stops a throwaway Kubernetes control
// plane on loopback for the end-to-end tests: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok (fake nodes, no kubelet),
// all built from upstream Go modules by ../cluster.sh. It is test harness
// only and has no dependencies beyond the Go standard library.
//
//	thv-e2e-cluster up     --state DIR --bin DIR --kwok-config FILE [--foreground] [--nodes N]
//	thv-e2e-cluster down   --state DIR --bin DIR
//	thv-e2e-cluster status --state DIR --bin DIR
//	thv-e2e-cluster restart --state DIR --bin DIR --components etcd,kube-apiserver [--signal KILL|TERM] [--down 2s]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Control-plane components in start order; the real node's (nodeComponents)
// follow when it is enabled.
// auditPolicy records, at Metadata level (who, verb, resource; no bodies), the
// requests of ServiceAccounts of the namespace thv-bench: clients a benchmark runs
// under their own identity to count their API requests. Everything else: None.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  userGroups: ["system:serviceaccounts:thv-bench"]
- level: None
`

var componentOrder = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}

// allComponents: every component a cluster may have, for finding PID files.
func allComponents() []string { return append(slices.Clone(componentOrder), nodeComponents...) }

const (
	serviceCIDR = "10.96.0.0/16"
	podCIDR     = "10.244.0.0/16"
	// kwok's fake pods take their IPs from here, apart from the real node's
	// 10.244.0.0/24: a pod IP must name one pod, or NetworkPolicy enforcement
	// (which finds a packet's pod by its IP) may judge a real pod's packet by a
	// fake pod's policies.
	kwokPodCIDR = "10.244.128.0/17"
	saIssuer    = "https://kubernetes.default.svc.cluster.local"
)

// clusterState is persisted as <state>/cluster.json.
type clusterState struct {
	KubeVersion string         `json:"kubeVersion"`
	Server      string         `json:"server"`
	Kubeconfig  string         `json:"kubeconfig"`
	BinDir      string         `json:"binDir"`
	Ports       map[string]int `json:"ports"`
	Nodes       []string       `json:"nodes"`
	// RealNode is the kubelet node's name ("" when it is disabled).
	RealNode    string    `json:"realNode,omitempty"`
	StartedAt   time.Time `json:"startedAt"`
	LauncherPID int       `json:"launcherPid"`
	Foreground  bool      `json:"foreground"`
}

type options struct {
	state, bin, kwokConfig, kubeVersion string
	images                              string
	foreground                          bool
	nodes                               int
	timeout                             time.Duration
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	closeInheritedFDs()
	verb := os.Args[1]
	fs := flag.NewFlagSet(verb, flag.ExitOnError)
	var o options
	fs.StringVar(&o.state, "state", "", "state directory (kubeconfig, pki, etcd data, logs, pids)")
	fs.StringVar(&o.bin, "bin", "", "directory holding etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok")
	fs.StringVar(&o.kwokConfig, "kwok-config", "", "kwok configuration file with the Stage objects")
	fs.StringVar(&o.kubeVersion, "kube-version", "v1.36.3", "Kubernetes version reported by the fake nodes")
	fs.StringVar(&o.images, "images", os.Getenv("THV_E2E_IMAGES"), "directory of image archives (*.tar) to import into the real node")
	fs.BoolVar(&o.foreground, "foreground", false, "stay in the foreground; Ctrl-C stops the cluster")
	fs.IntVar(&o.nodes, "nodes", envInt("THV_E2E_NODES", 1), "number of kwok fake nodes")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "overall start-up timeout")
	components := fs.String("components", "", "restart: the components to kill and start again, comma-separated")
	signalName := fs.String("signal", "KILL", "restart: KILL or TERM")
	downFor := fs.Duration("down", 0, "restart: how long the components stay down")
	_ = fs.Parse(os.Args[2:])
	if o.state == "" || o.bin == "" {
		usage()
	}
	var err error
	if o.state, err = filepath.Abs(o.state); err != nil {
		fatal(err)
	}
	if o.bin, err = filepath.Abs(o.bin); err != nil {
		fatal(err)
	}
	if real, err := filepath.EvalSymlinks(o.bin); err == nil {
		o.bin = real
	}
	switch verb {
	case "up":
		os.Exit(up(o))
	case "down":
		if err := down(o); err != nil {
			fatal(err)
		}
	case "status":
		os.Exit(status(o))
	case "restart":
		sig, err := parseSignal(*signalName)
		if err != nil {
			fatal(err)
		}
		if *components == "" {
			fatal(errors.New("restart needs --components"))
		}
		if err := restart(o, strings.Split(*components, ","), sig, *downFor); err != nil {
			fatal(err)
		}
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: thv-e2e-cluster up|down|status|restart --state DIR --bin DIR [--kwok-config FILE] [--foreground] [--nodes N]")
	os.Exit(2)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "thv-e2e-cluster: "+err.Error())
	os.Exit(1)
}

func say(format string, args ...any) {
	fmt.Printf("thv-e2e-cluster: "+format+"\n", args...)
}

// componentError names the component and shows the end of its log.
type componentError struct {
	name, log string
	err       error
}

func (e *componentError) Error() string {
	return fmt.Sprintf("%s: %v\n  log file: %s\n--- last 30 lines of %s ---\n%s\n--- end of %s ---",
		e.name, e.err, e.log, e.log, tail(e.log, 30), e.name)
}

func loadState(state string) (*clusterState, error) {
	b, err := os.ReadFile(filepath.Join(state, "cluster.json"))
	if err != nil {
		return nil, err
	}
	var st clusterState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

func records(state string) []pidRecord {
	var out []pidRecord
	for _, name := range allComponents() {
		if r, ok := readPID(state, name); ok {
			out = append(out, r)
		}
	}
	return out
}

func adminClient(state string, st *clusterState) (*apiClient, error) {
	read := func(n string) []byte { b, _ := os.ReadFile(filepath.Join(state, "pki", n)); return b }
	return newAPIClient(st.Server, read("ca.crt"), read("admin.crt"), read("admin.key"))
}

// healthy checks an existing cluster: every recorded process alive, the
// apiserver ready and every fake node Ready.
func healthy(ctx context.Context, o options, st *clusterState) error {
	recs := records(o.state)
	want := len(componentOrder)
	if st.RealNode != "" {
		want += len(nodeComponents)
	}
	if len(recs) != want {
		return fmt.Errorf("only %d of %d PID files present", len(recs), want)
	}
	for _, r := range recs {
		if !r.alive() {
			return fmt.Errorf("%s (pid %d) is not running", r.Name, r.PID)
		}
	}
	if st.BinDir != o.bin {
		return fmt.Errorf("cluster was started from %s, not %s", st.BinDir, o.bin)
	}
	c, err := adminClient(o.state, st)
	if err != nil {
		return err
	}
	if _, err := c.do(ctx, "GET", "/readyz", nil, nil); err != nil {
		return err
	}
	for _, n := range st.Nodes {
		var node nodeObj
		if _, err := c.do(ctx, "GET", "/api/v1/nodes/"+n, nil, &node); err != nil {
			return err
		}
		if ok, why := nodeReady(&node); !ok {
			return fmt.Errorf("node %s: %s", n, why)
		}
	}
	if want, _ := realNodeWanted(); want != (st.RealNode != "") {
		return fmt.Errorf("the cluster was started with real node %q; wanted now: %v", st.RealNode, want)
	}
	if st.RealNode != "" {
		if err := realNodeReady(ctx, c); err != nil {
			return fmt.Errorf("node %s: %w", st.RealNode, err)
		}
		if !queueListened(netpolQueue) {
			return fmt.Errorf("node %s: no NetworkPolicy enforcer listens on nfqueue %s", st.RealNode, netpolQueue)
		}
	}
	return nil
}

// stopTiers: what depends on the apiserver goes first, then the apiserver
// (which needs etcd to shut down cleanly), then etcd.
var stopTiers = [][]string{{"kwok", "kube-scheduler", "kube-controller-manager", "kubelet", "kube-proxy", "containerd"}, {"kube-apiserver"}, {"etcd"}}

func stopInTiers(recs []pidRecord) error {
	for _, tier := range stopTiers {
		var batch []pidRecord
		for _, r := range recs {
			if slices.Contains(tier, r.Name) {
				if r.alive() {
					say("stopping %s (pid %d)", r.Name, r.PID)
				}
				batch = append(batch, r)
			}
		}
		if err := stopRecords(batch, 15*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// stateEntries are the only names up/down ever delete inside the state dir.
var stateEntries = []string{
	"cluster.json", "env", "kubeconfig", "kubeconfigs", "pki", "pids", "etcd",
	"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "node",
}

func clearState(state string, keepLogs bool) error {
	for _, e := range stateEntries {
		if err := os.RemoveAll(filepath.Join(state, e)); err != nil {
			return err
		}
	}
	if !keepLogs {
		return os.RemoveAll(filepath.Join(state, "logs"))
	}
	return nil
}

func up(o options) int {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer cancel()

	if o.kwokConfig == "" {
		fatal(errors.New("up needs --kwok-config"))
	}
	for _, name := range componentOrder {
		if _, err := os.Stat(filepath.Join(o.bin, name)); err != nil {
			fatal(fmt.Errorf("%s binary missing in %s (run the build first): %v", name, o.bin, err))
		}
	}

	// Reuse a healthy cluster; clean up a broken one.
	if st, err := loadState(o.state); err == nil {
		hctx, hcancel := context.WithTimeout(ctx, 15*time.Second)
		herr := healthy(hctx, o, st)
		hcancel()
		if herr == nil {
			say("reusing the healthy cluster already running (started %s)", st.StartedAt.Format(time.RFC3339))
			printSummary(o, st)
			if o.foreground {
				return superviseExisting(ctx, o)
			}
			return 0
		}
		say("existing cluster state in %s is not healthy (%v); replacing it", o.state, herr)
	}
	if len(records(o.state)) > 0 || len(strays(o.bin, o.state)) > 0 {
		if err := down(o); err != nil {
			fmt.Fprintln(os.Stderr, "thv-e2e-cluster: could not stop the previous cluster: "+err.Error())
			return 1
		}
	}
	if err := clearState(o.state, false); err != nil {
		fatal(err)
	}
	for _, d := range []string{"logs", "pids", "kubeconfigs", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"} {
		if err := os.MkdirAll(filepath.Join(o.state, d), 0o700); err != nil {
			fatal(err)
		}
	}

	if err := os.WriteFile(filepath.Join(o.state, "audit-policy.yaml"), []byte(auditPolicy), 0o644); err != nil {
		fatal(err)
	}

	started := []*running{}
	// Set once no other cluster's real node runs: only then may a failed
	// start remove the bridge and the rest (they are this cluster's).
	nodeClaimed := false
	var nodeLock *nodeLock // held from the claim until the node's processes run
	fail := func(err error) int {
		if nodeClaimed && nodeLock.f == nil {
			// Our node's processes stop below: keep another `up` from
			// claiming the bridge before the teardown is through.
			if l, lerr := lockRealNode(); lerr == nil {
				nodeLock = l
			}
		}
		defer nodeLock.release()
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "thv-e2e-cluster: interrupted; stopping what had started")
		} else {
			fmt.Fprintln(os.Stderr, "thv-e2e-cluster: FAILED to start the cluster: "+err.Error())
		}
		var recs []pidRecord
		for _, p := range started {
			recs = append(recs, p.rec)
		}
		if serr := stopInTiers(recs); serr != nil {
			fmt.Fprintln(os.Stderr, "thv-e2e-cluster: "+serr.Error())
		}
		if nodeClaimed && (linkExists(bridgeName) || dirExists(nodeDir(o.state))) {
			if terr := nodeTeardown(o.state, o.bin); terr != nil {
				fmt.Fprintln(os.Stderr, "thv-e2e-cluster: real node teardown: "+terr.Error())
			}
		}
		_ = clearState(o.state, true)
		fmt.Fprintf(os.Stderr, "thv-e2e-cluster: stopped what had started; logs kept in %s\n", filepath.Join(o.state, "logs"))
		return 1
	}
	// abort reports the first component that has exited.
	abort := func() error {
		for _, p := range started {
			if p.exited() {
				return &componentError{name: p.rec.Name, log: logFile(o.state, p.rec.Name),
					err: fmt.Errorf("exited unexpectedly (%v)", p.err)}
			}
		}
		if ctx.Err() != nil {
			return errors.New("interrupted")
		}
		return nil
	}
	deadline := time.Now().Add(o.timeout)
	remaining := func() time.Duration { return max(time.Until(deadline), time.Second) }
	begin := time.Now()

	// PKI and ports.
	p, err := generatePKI(filepath.Join(o.state, "pki"))
	if err != nil {
		return fail(fmt.Errorf("generating certificates: %w", err))
	}
	taken := map[int]bool{}
	ports := map[string]int{}
	for _, n := range []string{"etcd-client", "etcd-peer", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok",
		"kubelet", "kubelet-healthz", "kube-proxy-healthz", "kube-proxy-metrics"} {
		if ports[n], err = freePort(taken); err != nil {
			return fail(err)
		}
	}
	server := fmt.Sprintf("https://127.0.0.1:%d", ports["kube-apiserver"])
	st := &clusterState{
		KubeVersion: o.kubeVersion, Server: server, Kubeconfig: filepath.Join(o.state, "kubeconfig"),
		BinDir: o.bin, Ports: ports, StartedAt: time.Now().UTC(), LauncherPID: os.Getpid(), Foreground: o.foreground,
	}
	for i := range o.nodes {
		st.Nodes = append(st.Nodes, fmt.Sprintf("kwok-node-%d", i))
	}
	realNode, whyNot := realNodeWanted()
	if realNode {
		if err := nodePreflight(o.bin); err != nil {
			return fail(err)
		}
		lock, err := claimRealNode(ctx, o)
		if err != nil {
			return fail(fmt.Errorf("real node: %w", err))
		}
		nodeLock, nodeClaimed = lock, true
		st.RealNode = nodeName
		if err := os.MkdirAll(nodeDir(o.state), 0o700); err != nil {
			return fail(err)
		}
		if err := nodeNetworkUp(o.state); err != nil {
			return fail(fmt.Errorf("real node network: %w", err))
		}
	} else {
		say("no real node (%s): pods run on kwok's fake nodes only", whyNot)
	}

	// Kubeconfigs: the admin one for users and tests, one per component.
	kcPath := func(n string) string { return filepath.Join(o.state, "kubeconfigs", n+".kubeconfig") }
	for n, kp := range map[string]*keyPair{"kube-controller-manager": p.kcm, "kube-scheduler": p.scheduler, "kwok": p.kwok} {
		if err := os.WriteFile(kcPath(n), kubeconfig(server, p.ca.certPEM, n, kp.certPEM, kp.keyPEM), 0o600); err != nil {
			return fail(err)
		}
	}

	pk := p.path
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports["etcd-client"])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports["etcd-peer"])
	type comp struct {
		name    string
		args    []string
		ready   func(context.Context) error
		timeout time.Duration
	}
	insecureHealthz := func(port int) func(context.Context) error {
		return func(ctx context.Context) error {
			return probe(ctx, fmt.Sprintf("https://127.0.0.1:%d/healthz", port), true)
		}
	}
	var api *apiClient
	comps := map[string]comp{
		"etcd": {
			args: []string{
				"--name=thv-e2e",
				"--data-dir=" + filepath.Join(o.state, "etcd"),
				"--listen-client-urls=" + etcdURL, "--advertise-client-urls=" + etcdURL,
				"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
				"--initial-cluster=thv-e2e=" + peerURL, "--initial-cluster-state=new",
				// Throwaway data on a shared disk: fsync only costs latency.
				"--unsafe-no-fsync=true",
				"--log-level=warn",
			},
			ready: func(ctx context.Context) error {
				return probe(ctx, etcdURL+"/health", false)
			},
			timeout: time.Minute,
		},
		"kube-apiserver": {
			args: []string{
				"--etcd-servers=" + etcdURL,
				fmt.Sprintf("--secure-port=%d", ports["kube-apiserver"]),
				"--cert-dir=" + filepath.Join(o.state, "kube-apiserver"),
				"--tls-cert-file=" + pk("apiserver.crt"),
				"--tls-private-key-file=" + pk("apiserver.key"),
				"--client-ca-file=" + pk("ca.crt"),
				"--service-account-issuer=" + saIssuer,
				"--service-account-key-file=" + pk("sa.pub"),
				"--service-account-signing-key-file=" + pk("sa.key"),
				"--service-cluster-ip-range=" + serviceCIDR,
				"--authorization-mode=Node,RBAC",
				// In addition to the default set (which already has
				// PodSecurity, ServiceAccount and both webhook plugins).
				"--enable-admission-plugins=NodeRestriction,PodSecurity,ServiceAccount,MutatingAdmissionWebhook,ValidatingAdmissionWebhook",
				"--allow-privileged=true",
				"--requestheader-client-ca-file=" + pk("front-proxy-ca.crt"),
				"--requestheader-allowed-names=front-proxy-client",
				"--requestheader-username-headers=X-Remote-User",
				"--requestheader-group-headers=X-Remote-Group",
				"--requestheader-extra-headers-prefix=X-Remote-Extra-",
				"--proxy-client-cert-file=" + pk("front-proxy-client.crt"),
				"--proxy-client-key-file=" + pk("front-proxy-client.key"),
				profilingFlag(),
				"--event-ttl=1h",
				// Requests of the ServiceAccounts in the namespace thv-bench only
				// (what a benchmark counts per client, e.g. make bench-vs-toolhive);
				// nobody else's requests are written.
				"--audit-policy-file=" + filepath.Join(o.state, "audit-policy.yaml"),
				"--audit-log-path=" + filepath.Join(o.state, "logs", "audit.log"),
				"--audit-log-maxsize=1024",
				"--audit-log-maxbackup=1",
			},
			timeout: 3 * time.Minute,
		},
		"kube-controller-manager": {
			args: []string{
				"--kubeconfig=" + kcPath("kube-controller-manager"),
				"--authentication-kubeconfig=" + kcPath("kube-controller-manager"),
				"--authorization-kubeconfig=" + kcPath("kube-controller-manager"),
				"--bind-address=127.0.0.1",
				fmt.Sprintf("--secure-port=%d", ports["kube-controller-manager"]),
				"--cert-dir=" + filepath.Join(o.state, "kube-controller-manager"),
				"--leader-elect=false",
				"--controllers=*",
				"--use-service-account-credentials=true",
				"--service-account-private-key-file=" + pk("sa.key"),
				"--root-ca-file=" + pk("ca.crt"),
				"--cluster-signing-cert-file=" + pk("ca.crt"),
				"--cluster-signing-key-file=" + pk("ca.key"),
				"--service-cluster-ip-range=" + serviceCIDR,
				"--cluster-cidr=" + podCIDR,
				"--allocate-node-cidrs=false",
				"--profiling=false",
			},
			ready:   insecureHealthz(ports["kube-controller-manager"]),
			timeout: 2 * time.Minute,
		},
		"kube-scheduler": {
			args: []string{
				"--kubeconfig=" + kcPath("kube-scheduler"),
				"--authentication-kubeconfig=" + kcPath("kube-scheduler"),
				"--authorization-kubeconfig=" + kcPath("kube-scheduler"),
				"--bind-address=127.0.0.1",
				fmt.Sprintf("--secure-port=%d", ports["kube-scheduler"]),
				"--cert-dir=" + filepath.Join(o.state, "kube-scheduler"),
				"--leader-elect=false",
				"--profiling=false",
			},
			ready:   insecureHealthz(ports["kube-scheduler"]),
			timeout: 2 * time.Minute,
		},
		"kwok": {
			args: []string{
				"--kubeconfig=" + kcPath("kwok"),
				"--config=" + o.kwokConfig,
				"--manage-all-nodes=false",
				"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
				// The fake kubelet's address: loopback, so anything that
				// dials "the node" stays on this machine.
				"--node-ip=127.0.0.1",
				"--cidr=" + kwokPodCIDR,
				"--node-lease-duration-seconds=40",
				fmt.Sprintf("--server-address=127.0.0.1:%d", ports["kwok"]),
			},
			ready: func(ctx context.Context) error {
				return probe(ctx, fmt.Sprintf("http://127.0.0.1:%d/healthz", ports["kwok"]), false)
			},
			timeout: 2 * time.Minute,
		},
	}
	apiComp := comps["kube-apiserver"]
	if realNode {
		// Pods reach the API server through the "kubernetes" Service, whose
		// endpoint is the node's bridge address; the API server reaches the
		// kubelet by its InternalIP, never through a DNS lookup.
		apiComp.args = append(apiComp.args, "--bind-address=0.0.0.0", "--advertise-address="+nodeIP.String(),
			"--kubelet-preferred-address-types=InternalIP",
			"--kubelet-client-certificate="+pk("apiserver-kubelet-client.crt"),
			"--kubelet-client-key="+pk("apiserver-kubelet-client.key"),
			// Per-namespace default node selector and tolerations: how a
			// namespace opts in to the real node (see node.go).
			"--enable-admission-plugins=NodeRestriction,PodSecurity,ServiceAccount,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,PodNodeSelector,PodTolerationRestriction")
	} else {
		// The advertise address is loopback, which Endpoints validation
		// rejects; nothing dials the "kubernetes" Service without a real
		// node, so don't maintain its endpoints.
		apiComp.args = append(apiComp.args, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none")
	}
	comps["kube-apiserver"] = apiComp
	apiReady := func(ctx context.Context) error {
		_, err := api.do(ctx, "GET", "/readyz", nil, nil)
		return err
	}
	c := comps["kube-apiserver"]
	c.ready = apiReady
	comps["kube-apiserver"] = c

	launch := func(name string) error {
		c := comps[name]
		say("starting %s (log: %s)", name, logFile(o.state, name))
		proc, err := startProcess(o.state, name, filepath.Join(o.bin, name), c.args)
		if err != nil {
			return &componentError{name: name, log: logFile(o.state, name), err: err}
		}
		started = append(started, proc)
		return nil
	}
	waitReady := func(name string) error {
		c := comps[name]
		if err := waitFor(ctx, name+" to become healthy", min(c.timeout, remaining()), abort, c.ready); err != nil {
			var ce *componentError
			if errors.As(err, &ce) {
				return err
			}
			return &componentError{name: name, log: logFile(o.state, name), err: err}
		}
		say("%s is healthy (%.1fs)", name, time.Since(begin).Seconds())
		return nil
	}

	if api, err = newAPIClient(server, p.ca.certPEM, p.admin.certPEM, p.admin.keyPEM); err != nil {
		return fail(err)
	}
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if err := launch(name); err != nil {
			return fail(err)
		}
		if err := waitReady(name); err != nil {
			return fail(err)
		}
	}
	if err := os.WriteFile(st.Kubeconfig, kubeconfig(server, p.ca.certPEM, "thv-e2e-admin", p.admin.certPEM, p.admin.keyPEM), 0o600); err != nil {
		return fail(err)
	}
	rest := []string{"kube-controller-manager", "kube-scheduler", "kwok"}
	for _, name := range rest {
		if err := launch(name); err != nil {
			return fail(err)
		}
	}
	for _, name := range rest {
		if err := waitReady(name); err != nil {
			return fail(err)
		}
	}

	// Fake nodes: kwok (as their kubelet) makes them Ready, the node
	// lifecycle controller then lifts the not-ready taint.
	for _, n := range st.Nodes {
		if _, err := api.do(ctx, "POST", "/api/v1/nodes", fakeNode(n, o.kubeVersion), nil); err != nil {
			return fail(&componentError{name: "kube-apiserver", log: logFile(o.state, "kube-apiserver"), err: fmt.Errorf("creating node %s: %w", n, err)})
		}
	}
	for _, n := range st.Nodes {
		err := waitFor(ctx, "node "+n+" to be Ready and untainted", remaining(), abort, func(ctx context.Context) error {
			var node nodeObj
			if _, err := api.do(ctx, "GET", "/api/v1/nodes/"+n, nil, &node); err != nil {
				return err
			}
			if ok, why := nodeReady(&node); !ok {
				return errors.New(why)
			}
			return nil
		})
		if err != nil {
			return fail(&componentError{name: "kwok", log: logFile(o.state, "kwok"), err: err})
		}
	}
	say("node(s) %s Ready (%.1fs)", strings.Join(st.Nodes, ", "), time.Since(begin).Seconds())

	// The serviceaccount controller creates "default" in every namespace;
	// pods cannot be admitted in a namespace before that.
	err = waitFor(ctx, "ServiceAccount default/default", remaining(), abort, func(ctx context.Context) error {
		_, err := api.do(ctx, "GET", "/api/v1/namespaces/default/serviceaccounts/default", nil, nil)
		return err
	})
	if err != nil {
		return fail(&componentError{name: "kube-controller-manager", log: logFile(o.state, "kube-controller-manager"), err: err})
	}

	if realNode {
		if err := startRealNode(ctx, o, p, server, ports, api, abort, remaining, func(p *running) { started = append(started, p) }); err != nil {
			return fail(err)
		}
		nodeLock.release()
		say("node %s Ready: kubelet, containerd, kube-proxy, kube-network-policies (%.1fs)", nodeName, time.Since(begin).Seconds())
	}

	b, _ := json.MarshalIndent(st, "", "  ")
	if err := os.WriteFile(filepath.Join(o.state, "cluster.json"), b, 0o644); err != nil {
		return fail(err)
	}
	env := fmt.Sprintf("export KUBECONFIG=%q\nexport THV_E2E_BIN=%q\nexport PATH=\"$THV_E2E_BIN:$PATH\"\n", st.Kubeconfig, o.bin)
	if err := os.WriteFile(filepath.Join(o.state, "env"), []byte(env), 0o644); err != nil {
		return fail(err)
	}
	say("cluster ready in %.1fs", time.Since(begin).Seconds())
	printSummary(o, st)
	if !o.foreground {
		return 0
	}
	return supervise(ctx, o, started)
}

func printSummary(o options, st *clusterState) {
	say("Kubernetes %s API server: %s", st.KubeVersion, st.Server)
	say("kubeconfig: %s", st.Kubeconfig)
	say("kubectl and helm: %s", o.bin)
	say("logs: %s", filepath.Join(o.state, "logs"))
	say("use it: export KUBECONFIG=%s  (or: source %s)", st.Kubeconfig, filepath.Join(o.state, "env"))
}

// supervise keeps the launcher in the foreground until a signal arrives or a
// component dies, then stops everything and clears the state.
func supervise(ctx context.Context, o options, procs []*running) int {
	say("running in the foreground; press Ctrl-C to stop the cluster")
	code := 0
	ticker := time.NewTicker(500 * time.Millisecond)
	defer ticker.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			say("interrupted; stopping the cluster")
			break loop
		case <-ticker.C:
			for _, p := range procs {
				if p.exited() {
					fmt.Fprintln(os.Stderr, "thv-e2e-cluster: "+(&componentError{name: p.rec.Name, log: logFile(o.state, p.rec.Name),
						err: fmt.Errorf("exited unexpectedly (%v)", p.err)}).Error())
					code = 1
					break loop
				}
			}
		}
	}
	if err := down(o); err != nil {
		fmt.Fprintln(os.Stderr, "thv-e2e-cluster: "+err.Error())
		return 1
	}
	return code
}

// superviseExisting is supervise for a reused cluster we did not start.
func superviseExisting(ctx context.Context, o options) int {
	say("running in the foreground; press Ctrl-C to stop the cluster")
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	code := 0
loop:
	for {
		select {
		case <-ctx.Done():
			say("interrupted; stopping the cluster")
			break loop
		case <-ticker.C:
			for _, r := range records(o.state) {
				if !r.alive() {
					fmt.Fprintf(os.Stderr, "thv-e2e-cluster: %s (pid %d) is gone; see %s\n", r.Name, r.PID, logFile(o.state, r.Name))
					code = 1
					break loop
				}
			}
		}
	}
	if err := down(o); err != nil {
		fmt.Fprintln(os.Stderr, "thv-e2e-cluster: "+err.Error())
		return 1
	}
	return code
}

// down stops every process of the cluster (by recorded PID, then any stray
// process of ours that still mentions the state dir), verifies that none is
// left, and removes the state except the logs.
func down(o options) error {
	// Stopping the node's processes and tearing it down is one step to any
	// other cluster's `up` waiting for the node.
	if os.Geteuid() == 0 { // only root has a real node (and may write /run)
		lock, err := lockRealNode()
		if err != nil {
			return err
		}
		defer lock.release()
	}
	recs := records(o.state)
	if err := stopInTiers(recs); err != nil {
		return err
	}
	if s := strays(o.bin, o.state); len(s) > 0 {
		for _, r := range s {
			say("stopping stray %s (pid %d)", r.Name, r.PID)
		}
		if err := stopRecords(s, 10*time.Second); err != nil {
			return err
		}
	}
	var left []string
	for _, r := range append(recs, strays(o.bin, o.state)...) {
		if r.alive() {
			left = append(left, fmt.Sprintf("%s (pid %d)", r.Name, r.PID))
		}
	}
	if len(left) > 0 {
		return errors.New("processes still running: " + strings.Join(left, ", "))
	}
	if others := otherRealNode(o.state); len(others) > 0 {
		// The bridge and /run/thv-e2e are that cluster's: leave them.
		say("the real node on this machine is another cluster's (%s); left running", describeOwners(others))
	} else if linkExists(bridgeName) || dirExists(nodeDir(o.state)) || dirExists(nodeRun) {
		if err := nodeTeardown(o.state, o.bin); err != nil {
			return fmt.Errorf("real node teardown (run down again to retry): %w", err)
		}
		say("real node removed: no pod process, mount, bridge, veth, iptables rule or cgroup left")
	}
	if err := clearState(o.state, true); err != nil {
		return err
	}
	say("cluster stopped; no component process left (logs kept in %s)", filepath.Join(o.state, "logs"))
	return nil
}

func status(o options) int {
	st, err := loadState(o.state)
	if err != nil {
		if len(records(o.state)) == 0 {
			say("no cluster in %s", o.state)
			return 3
		}
	}
	code := 0
	for _, name := range allComponents() {
		r, ok := readPID(o.state, name)
		if !ok && slices.Contains(nodeComponents, name) && (st == nil || st.RealNode == "") {
			continue
		}
		switch {
		case !ok:
			fmt.Printf("  %-24s no PID file\n", name)
			code = 1
		case r.alive():
			fmt.Printf("  %-24s running (pid %d)\n", name, r.PID)
		default:
			fmt.Printf("  %-24s NOT running (pid %d was recorded); log: %s\n", name, r.PID, logFile(o.state, name))
			code = 1
		}
	}
	if st == nil {
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := healthy(ctx, o, st); err != nil {
		say("cluster NOT healthy: %v", err)
		return 1
	}
	say("cluster healthy")
	printSummary(o, st)
	return code
}
