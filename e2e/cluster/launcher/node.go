package main

// The real node: containerd + runc + the CNI bridge plugin, a kubelet and
// kube-proxy, all on this machine, so pods run real processes. Its network
// exists only on a bridge this launcher creates (thv0, 10.244.0.1/24) and in
// the pods' network namespaces behind it: pods get no default route, the
// FORWARD chain drops anything that would leave the bridge, and their
// resolv.conf names no reachable resolver, so no packet or DNS query leaves
// the machine. `down` removes every process, mount, network namespace, link,
// iptables rule and cgroup it made, and restores the sysctls it changed.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
)

const (
	nodeName   = "thv-node"
	bridgeName = "thv0"
	bridgeCIDR = "10.244.0.1/24"
	podSubnet  = "10.244.0.0/24"
	// Pods may only reach the node and Service ClusterIPs (DNATed on the node).
	fwdChain = "THV-E2E-FORWARD"
	// The real node carries this taint: only pods that mean to run for real
	// (in a namespace annotated by RealNodeNamespaceAnnotations) land on it;
	// everything else keeps going to the kwok nodes.
	realNodeTaint = "thv-e2e/real-node"
	// Sockets need short paths (108 bytes), so runtime state lives here.
	nodeRun = "/run/thv-e2e"
	// The pause image containerd uses for every pod sandbox.
	pauseImage = "localhost/thv-e2e/pause:1"
)

var nodeIP = net.ParseIP("10.244.0.1")

// Node components in start order (after the control plane).
var nodeComponents = []string{"containerd", "kubelet", "kube-proxy"}

func nodeDir(state string) string { return filepath.Join(state, "node") }

// realNodeWanted: on by default; the node needs root (bridges, mounts,
// iptables), so it is skipped with a message when not root.
func realNodeWanted() (bool, string) {
	if v := os.Getenv("THV_E2E_REAL_NODE"); v == "0" || v == "false" {
		return false, "THV_E2E_REAL_NODE=0"
	}
	if os.Geteuid() != 0 {
		return false, "not running as root (bridges, mounts and iptables need it)"
	}
	return true, ""
}

// nodePreflight names the missing host tools, with the package that has them.
func nodePreflight(bin string) error {
	var missing []string
	for tool, pkg := range map[string]string{"runc": "runc", "iptables": "iptables", "ip": "iproute2"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", tool, pkg))
		}
	}
	for _, t := range []string{"containerd", "containerd-shim-runc-v2", "ctr", "bridge", "host-local", "loopback", "kubelet", "kube-proxy", netpolName, "thv-image"} {
		if _, err := os.Stat(filepath.Join(bin, t)); err != nil {
			missing = append(missing, t+" in "+bin+" (run e2e/cluster/cluster.sh build)")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		return errors.New("the real node needs: " + strings.Join(missing, ", "))
	}
	return nil
}

// nodeEnv: containerd finds its shim and runc on PATH.
func nodeEnv(bin string) []string {
	return []string{"PATH=" + bin + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// sysctls the node changes; their previous values are saved and restored.
var nodeSysctls = map[string]string{
	"net/ipv4/ip_forward":                 "1",
	"net/bridge/bridge-nf-call-iptables":  "1",
	"net/bridge/bridge-nf-call-ip6tables": "1",
}

func sysctlPath(k string) string { return "/proc/sys/" + k }

// nodeNetworkUp creates the bridge, the FORWARD isolation rules and sets the
// sysctls, saving the old values in <state>/node/sysctl.json.
func nodeNetworkUp(state string) error {
	saved := map[string]string{}
	savedPath := filepath.Join(nodeDir(state), "sysctl.json")
	if b, err := os.ReadFile(savedPath); err == nil {
		_ = json.Unmarshal(b, &saved) // a previous, unfinished run: keep its originals
	}
	for k, v := range nodeSysctls {
		old, err := os.ReadFile(sysctlPath(k))
		if err != nil {
			return fmt.Errorf("sysctl %s: %w", k, err)
		}
		if _, ok := saved[k]; !ok {
			saved[k] = strings.TrimSpace(string(old))
		}
		if err := os.WriteFile(sysctlPath(k), []byte(v), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	b, _ := json.Marshal(saved)
	if err := os.WriteFile(savedPath, b, 0o600); err != nil {
		return err
	}
	if err := run("ip", "link", "add", bridgeName, "type", "bridge"); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"addr", "add", bridgeCIDR, "dev", bridgeName},
		{"link", "set", bridgeName, "up"},
	} {
		if err := run("ip", args...); err != nil {
			return err
		}
	}
	for _, args := range [][]string{
		{"-w", "-N", fwdChain},
		{"-w", "-A", fwdChain, "-i", bridgeName, "!", "-o", bridgeName, "-j", "DROP"},
		{"-w", "-A", fwdChain, "-o", bridgeName, "!", "-i", bridgeName, "-j", "DROP"},
		{"-w", "-I", "FORWARD", "1", "-j", fwdChain},
	} {
		if err := run("iptables", args...); err != nil {
			return err
		}
	}
	return netpolNetworkUp()
}

// nodeFiles writes the CNI, containerd, kubelet and kube-proxy configuration.
func nodeFiles(state, bin string, p *pki, server string, ports map[string]int) error {
	nd := nodeDir(state)
	if cgroupV2() {
		say("cgroup v2 (unified hierarchy): kubelet with cgroupfs driver")
	} else {
		say("cgroup v1 controllers: kubelet with cgroupfs driver and failCgroupV1: false")
	}
	for _, d := range []string{"cni/net.d", "cni/ipam", "kubelet", "containerd/certs.d/_default", "kubeconfigs"} {
		if err := os.MkdirAll(filepath.Join(nd, d), 0o700); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(nodeRun, 0o700); err != nil {
		return err
	}
	// No default route: pods reach the bridge (the node, the API server) and
	// the Service range, which kube-proxy DNATs on the node, and nothing else.
	cni := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "thv-e2e",
  "plugins": [{
    "type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false, "hairpinMode": true,
    "ipam": {"type": "host-local", "dataDir": %q,
             "ranges": [[{"subnet": %q, "gateway": %q}]],
             "routes": [{"dst": %q}]}
  }]
}
`, bridgeName, filepath.Join(nd, "cni/ipam"), podSubnet, nodeIP, serviceCIDR)
	files := map[string]string{
		"cni/net.d/10-thv-e2e.conflist": cni,
		// Pods get no usable resolver: a lookup fails at once inside the pod.
		"resolv.conf": "# thv-e2e real node: no DNS server; nothing may resolve names off this machine\nnameserver 127.0.0.53\n",
		// Every registry is a closed port on loopback: an image that was not imported
		// fails to pull at once ("connection refused"), and containerd never resolves a
		// registry's name or dials it off this machine.
		"containerd/certs.d/_default/hosts.toml": "server = \"http://127.0.0.1:9\"\n\n[host.\"http://127.0.0.1:9\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
		"containerd/config.toml": fmt.Sprintf(`version = 3
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.blockfile", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = %q

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = %q
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = %q

[plugins.'io.containerd.cri.v1.runtime']
  # This machine refuses a negative oom_score_adj; runc then fails to start.
  restrict_oom_score_adj = true
  netns_mounts_under = %q
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = [%q]
    conf_dir = %q
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      SystemdCgroup = false

[plugins.'io.containerd.grpc.v1.cri']
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
`, filepath.Join(nd, "containerd/root"), filepath.Join(nodeRun, "containerd"), containerdSock(),
			filepath.Join(nd, "containerd/certs.d"), pauseImage, filepath.Join(nodeRun, "netns"), bin, filepath.Join(nd, "cni/net.d")),
		"kubelet/config.yaml": fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %s
port: %d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %d
containerRuntimeEndpoint: unix://%s
cgroupDriver: cgroupfs
failCgroupV1: %t
failSwapOn: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %q}
authorization: {mode: AlwaysAllow}
tlsCertFile: %q
tlsPrivateKeyFile: %q
registerWithTaints:
- {key: %s, value: "true", effect: NoSchedule}
resolvConf: %q
clusterDomain: cluster.local
serializeImagePulls: false
evictionHard: {memory.available: "0%%", nodefs.available: "0%%", imagefs.available: "0%%", nodefs.inodesFree: "0%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
nodeStatusReportFrequency: 10s
`, nodeIP, ports["kubelet"], ports["kubelet-healthz"], containerdSock(), cgroupV2(), p.path("ca.crt"),
			p.path("kubelet-serving.crt"), p.path("kubelet-serving.key"), realNodeTaint,
			filepath.Join(nd, "resolv.conf")),
		"kube-proxy.yaml": fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: %q}
hostnameOverride: %s
mode: iptables
clusterCIDR: %s
bindAddress: %s
healthzBindAddress: 127.0.0.1:%d
metricsBindAddress: 127.0.0.1:%d
nodePortAddresses: ["%s/32"]
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
`, filepath.Join(nd, "kubeconfigs/kube-proxy.kubeconfig"), nodeName, podCIDR, nodeIP,
			ports["kube-proxy-healthz"], ports["kube-proxy-metrics"], nodeIP),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(nd, name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	for n, kp := range map[string]*keyPair{"kubelet": p.kubelet, "kube-proxy": p.kubeProxy} {
		if err := os.WriteFile(filepath.Join(nd, "kubeconfigs", n+".kubeconfig"), kubeconfig(server, p.ca.certPEM, n, kp.certPEM, kp.keyPEM), 0o600); err != nil {
			return err
		}
	}
	return nil
}

func containerdSock() string { return filepath.Join(nodeRun, "containerd.sock") }

// nodeArgs are the command lines of containerd, kubelet and kube-proxy.
func nodeArgs(state string) map[string][]string {
	nd := nodeDir(state)
	return map[string][]string{
		"containerd": {"--config", filepath.Join(nd, "containerd/config.toml"), "--log-level", "warn"},
		"kubelet": {
			"--config=" + filepath.Join(nd, "kubelet/config.yaml"),
			"--kubeconfig=" + filepath.Join(nd, "kubeconfigs/kubelet.kubeconfig"),
			"--root-dir=" + filepath.Join(nd, "kubelet/root"),
			"--cert-dir=" + filepath.Join(nd, "kubelet/pki"),
			"--hostname-override=" + nodeName,
			"--node-ip=" + nodeIP.String(),
			"--node-labels=type=real",
			"--v=1",
		},
		"kube-proxy": {"--config=" + filepath.Join(nd, "kube-proxy.yaml"), "--v=1"},
	}
}

func ctr(bin string, args ...string) error {
	return run(filepath.Join(bin, "ctr"), append([]string{"--address", containerdSock(), "--namespace", "k8s.io"}, args...)...)
}

// importImages loads every image archive of imagesDir (and the pause image)
// into containerd; pods use them with imagePullPolicy IfNotPresent or Never.
func importImages(bin, imagesDir string) ([]string, error) {
	var archives []string
	if imagesDir != "" {
		found, err := filepath.Glob(filepath.Join(imagesDir, "*.tar"))
		if err != nil {
			return nil, err
		}
		archives = found
	}
	for _, a := range archives {
		if err := ctr(bin, "images", "import", a); err != nil {
			return nil, fmt.Errorf("importing %s: %w", a, err)
		}
	}
	return archives, nil
}

// buildPauseImage packs the pause binary into the sandbox image.
func buildPauseImage(state, bin string) (string, error) {
	dir := filepath.Join(nodeDir(state), "pause-rootfs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(bin, "pause"))
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "pause"), b, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(nodeDir(state), "pause.tar")
	return out, run(filepath.Join(bin, "thv-image"), "--rootfs", dir, "--tag", pauseImage, "--out", out,
		"--entrypoint", "/pause", "--user", "65535:65535")
}

// ---- teardown -------------------------------------------------------------

// nodeTeardown removes what the real node left: pod processes and shims,
// mounts, network namespaces, veths, the bridge, iptables rules, cgroups and
// sysctls. Each step runs whatever the previous ones could not do, and every
// failure is reported.
func nodeTeardown(state, bin string) error {
	var errs []error
	killPods(bin)
	if err := unmountUnder(nodeRun, nodeDir(state)); err != nil {
		errs = append(errs, err)
	}
	// Network namespaces go with their last mount and process; then the veths.
	for _, l := range vethsOnBridge() {
		_ = run("ip", "link", "del", l)
	}
	if linkExists(bridgeName) {
		if err := run("ip", "link", "del", bridgeName); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := os.Stat(filepath.Join(bin, "kube-proxy")); err == nil {
		// kube-proxy's own rules, in both of its modes.
		_ = exec.Command(filepath.Join(bin, "kube-proxy"), "--cleanup").Run()
	}
	// The kubelet's chains (KUBE-FIREWALL, KUBE-KUBELET-CANARY, ...) and whatever
	// kube-proxy's cleanup did not remove.
	for _, tool := range []string{"iptables", "ip6tables"} {
		if err := removeKubeChains(tool); err != nil {
			errs = append(errs, err)
		}
	}
	if exec.Command("iptables", "-w", "-n", "-L", fwdChain).Run() == nil {
		for _, args := range [][]string{{"-w", "-D", "FORWARD", "-j", fwdChain}, {"-w", "-F", fwdChain}, {"-w", "-X", fwdChain}} {
			if err := run("iptables", args...); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := netpolNetworkDown(); err != nil {
		errs = append(errs, err)
	}
	removeCgroups()
	savedPath := filepath.Join(nodeDir(state), "sysctl.json")
	if b, err := os.ReadFile(savedPath); err == nil {
		saved := map[string]string{}
		if json.Unmarshal(b, &saved) == nil {
			for k, v := range saved {
				if err := os.WriteFile(sysctlPath(k), []byte(v), 0o644); err != nil {
					errs = append(errs, fmt.Errorf("restoring sysctl %s: %w", k, err))
				}
			}
		}
	}
	if err := os.RemoveAll(nodeRun); err != nil {
		errs = append(errs, err)
	}
	if left := nodeLeftovers(state); len(left) > 0 {
		errs = append(errs, errors.New("left behind: "+strings.Join(left, "; ")))
	}
	if len(errs) > 0 {
		// Keep <state>/node (saved sysctls): the next `down` tries again.
		return errors.Join(errs...)
	}
	return os.RemoveAll(nodeDir(state))
}

// killPods SIGKILLs every process in a pod cgroup and every runc shim of ours.
func killPods(bin string) {
	for range 3 {
		var pids []int
		for _, dir := range podCgroupDirs() {
			b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			if err != nil {
				continue
			}
			for f := range strings.FieldsSeq(string(b)) {
				var pid int
				if _, err := fmt.Sscan(f, &pid); err == nil {
					pids = append(pids, pid)
				}
			}
		}
		pids = append(pids, processesOf(filepath.Join(bin, "containerd-shim-runc-v2"))...)
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// processesOf lists the processes running the executable exe.
func processesOf(exe string) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && strings.TrimSuffix(l, " (deleted)") == exe {
			out = append(out, pid)
		}
	}
	return out
}

// podCgroupDirs: every cgroup under the kubelet's "kubepods" hierarchy, in
// every mounted v1 controller, deepest first.
func podCgroupDirs() []string {
	var dirs []string
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods")
	if _, err := os.Stat("/sys/fs/cgroup/kubepods"); err == nil {
		roots = append(roots, "/sys/fs/cgroup/kubepods")
	}
	for _, r := range roots {
		_ = filepath.WalkDir(r, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
	}
	sort.Slice(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") })
	return dirs
}

func removeCgroups() {
	for _, d := range podCgroupDirs() {
		_ = syscall.Rmdir(d)
	}
}

// unmountUnder detaches every mount point below the given directories,
// deepest first (overlay rootfs, shm, secrets' tmpfs, netns bind mounts).
func unmountUnder(dirs ...string) error {
	var points []string
	for _, m := range mountPoints() {
		for _, d := range dirs {
			if m == d || strings.HasPrefix(m, d+"/") {
				points = append(points, m)
			}
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errs []error
	for _, m := range points {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	return errors.Join(errs...)
}

func mountPoints() []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 {
			out = append(out, unescapeMount(f[4]))
		}
	}
	return out
}

func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// vethsOnBridge: host ends of pod veths still enslaved to the bridge.
func vethsOnBridge() []string {
	out, err := exec.Command("ip", "-o", "link", "show", "master", bridgeName).Output()
	if err != nil {
		return nil
	}
	var links []string
	for line := range strings.SplitSeq(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 {
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			links = append(links, name)
		}
	}
	return links
}

// nodeLeftovers lists what a finished teardown must not leave (for `down`
// and the self-test): mounts, the bridge, veths, iptables rules, cgroups.
func nodeLeftovers(state string) []string {
	var left []string
	for _, m := range mountPoints() {
		if strings.HasPrefix(m, nodeRun+"/") || strings.HasPrefix(m, nodeDir(state)+"/") {
			left = append(left, "mount "+m)
		}
	}
	if linkExists(bridgeName) {
		left = append(left, "bridge "+bridgeName)
	}
	for _, tool := range []string{"iptables-save", "ip6tables-save"} {
		out, err := exec.Command(tool).Output()
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(out), "\n") {
			if strings.Contains(line, "KUBE-") || strings.Contains(line, fwdChain) {
				left = append(left, tool+": "+line)
				break
			}
		}
	}
	if d := podCgroupDirs(); len(d) > 0 {
		left = append(left, "cgroup "+d[len(d)-1])
	}
	return left
}

// realNodeReady waits for the kubelet's node to be Ready with only our taint.
func realNodeReady(ctx context.Context, api *apiClient) error {
	var node nodeObj
	if _, err := api.do(ctx, "GET", "/api/v1/nodes/"+nodeName, nil, &node); err != nil {
		return err
	}
	if ok, why := nodeReady(&node); !ok {
		return errors.New(why)
	}
	if !slices.ContainsFunc(node.Spec.Taints, func(t struct {
		Key    string `json:"key"`
		Effect string `json:"effect"`
	}) bool {
		return t.Key == realNodeTaint
	}) {
		return fmt.Errorf("taint %s missing", realNodeTaint)
	}
	return nil
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// startRealNode writes the node's configuration, starts containerd, imports
// the images, then starts the kubelet and kube-proxy and waits for the node.
func startRealNode(ctx context.Context, o options, p *pki, server string, ports map[string]int, api *apiClient,
	abort func() error, remaining func() time.Duration, track func(*running)) error {
	if err := nodeFiles(o.state, o.bin, p, server, ports); err != nil {
		return fmt.Errorf("real node configuration: %w", err)
	}
	pause, err := buildPauseImage(o.state, o.bin)
	if err != nil {
		return fmt.Errorf("pause image: %w", err)
	}
	args := nodeArgs(o.state)
	launch := func(name string) error {
		say("starting %s (log: %s)", name, logFile(o.state, name))
		proc, err := startProcessEnv(o.state, name, filepath.Join(o.bin, name), args[name], nodeEnv(o.bin))
		if err != nil {
			return &componentError{name: name, log: logFile(o.state, name), err: err}
		}
		track(proc)
		return nil
	}
	if err := launch("containerd"); err != nil {
		return err
	}
	err = waitFor(ctx, "containerd", min(time.Minute, remaining()), abort, func(context.Context) error {
		return ctr(o.bin, "version")
	})
	if err != nil {
		return &componentError{name: "containerd", log: logFile(o.state, "containerd"), err: err}
	}
	if err := ctr(o.bin, "images", "import", pause); err != nil {
		return &componentError{name: "containerd", log: logFile(o.state, "containerd"), err: err}
	}
	imported, err := importImages(o.bin, o.images)
	if err != nil {
		return &componentError{name: "containerd", log: logFile(o.state, "containerd"), err: err}
	}
	for _, a := range imported {
		say("imported %s", filepath.Base(a))
	}
	for _, name := range []string{"kubelet", "kube-proxy"} {
		if err := launch(name); err != nil {
			return err
		}
	}
	err = waitFor(ctx, "node "+nodeName+" to be Ready", min(2*time.Minute, remaining()), abort, func(ctx context.Context) error {
		return realNodeReady(ctx, api)
	})
	if err != nil {
		return &componentError{name: "kubelet", log: logFile(o.state, "kubelet"), err: err}
	}
	err = waitFor(ctx, "kube-proxy", min(time.Minute, remaining()), abort, func(ctx context.Context) error {
		return probe(ctx, fmt.Sprintf("http://127.0.0.1:%d/healthz", ports["kube-proxy-healthz"]), false)
	})
	if err != nil {
		return &componentError{name: "kube-proxy", log: logFile(o.state, "kube-proxy"), err: err}
	}
	// NetworkPolicy enforcement, as a pod on the node (netpol.go).
	if err := startNetpol(ctx, o, api, abort, remaining); err != nil {
		return &componentError{name: "kubelet", log: logFile(o.state, "kubelet"), err: err}
	}
	return nil
}

// removeKubeChains deletes, in every table, the rules that jump to a KUBE-*
// chain, then the KUBE-* chains themselves.
func removeKubeChains(tool string) error {
	if _, err := exec.LookPath(tool); err != nil {
		return nil
	}
	var errs []error
	for _, table := range []string{"filter", "nat", "mangle", "raw"} {
		out, err := exec.Command(tool+"-save", "-t", table).Output()
		if err != nil {
			continue
		}
		var chains []string
		for line := range strings.SplitSeq(string(out), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) > 0 && strings.HasPrefix(f[0], ":KUBE-"):
				chains = append(chains, strings.TrimPrefix(f[0], ":"))
			case len(f) > 2 && f[0] == "-A" && !strings.HasPrefix(f[1], "KUBE-") && strings.Contains(line, " -j KUBE-"):
				// A rule of a built-in (or foreign) chain that jumps into ours.
				if err := run(tool, append([]string{"-w", "-t", table, "-D"}, f[1:]...)...); err != nil {
					errs = append(errs, err)
				}
			}
		}
		for _, c := range chains {
			_ = run(tool, "-w", "-t", table, "-F", c)
		}
		for _, c := range chains {
			if err := run(tool, "-w", "-t", table, "-X", c); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// cgroupV2 reports whether /sys/fs/cgroup is the unified (v2) hierarchy. On a v1 (or
// hybrid) machine the kubelet must be told not to refuse v1 (failCgroupV1: false); on
// v2 it keeps its default. The cgroupfs driver works on both without systemd.
func cgroupV2() bool {
	var fs syscall.Statfs_t
	const cgroup2Magic = 0x63677270
	return syscall.Statfs("/sys/fs/cgroup", &fs) == nil && fs.Type == cgroup2Magic
}

// nodeOwner is a live containerd, kubelet or kube-proxy of some checkout's
// real node; state is the state directory its command line names.
type nodeOwner struct {
	name  string
	pid   int
	state string
}

// realNodeOwners lists the live node components of every harness cluster on
// this machine. The bridge, nodeRun, the iptables chains and the pod subnet
// exist once per machine, so only one cluster's real node can run.
func realNodeOwners() []nodeOwner {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []nodeOwner
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		name := filepath.Base(strings.TrimSuffix(exe, " (deleted)"))
		if err != nil || !slices.Contains(nodeComponents, name) {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		state := ""
		for arg := range strings.SplitSeq(string(cmdline), "\x00") {
			// --config <state>/node/... or --config=<state>/node/...
			_, v, found := strings.Cut(arg, "=")
			if !found {
				v = arg
			}
			if i := strings.Index(v, "/node/"); i > 0 && filepath.IsAbs(v) {
				state = v[:i]
				break
			}
		}
		if st, _, ok := procStat(pid); state == "" || !ok || st == 'Z' {
			continue
		}
		out = append(out, nodeOwner{name: name, pid: pid, state: state})
	}
	return out
}

// otherRealNode: the live node components of clusters other than state's.
func otherRealNode(state string) []nodeOwner {
	var out []nodeOwner
	for _, w := range realNodeOwners() {
		if w.state != state {
			out = append(out, w)
		}
	}
	return out
}

func describeOwners(ws []nodeOwner) string {
	var parts []string
	for _, w := range ws {
		parts = append(parts, fmt.Sprintf("%s pid %d of %s", w.name, w.pid, w.state))
	}
	return strings.Join(parts, ", ")
}

// nodeWaitLimit is how long `up` waits for another cluster's real node to
// stop: THV_E2E_NODE_WAIT (a Go duration), 30 minutes by default.
func nodeWaitLimit() (time.Duration, error) {
	v := os.Getenv("THV_E2E_NODE_WAIT")
	if v == "" {
		return 30 * time.Minute, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("THV_E2E_NODE_WAIT=%q: want a duration such as 10m, or 0 not to wait", v)
	}
	return d, nil
}

// nodeLockPath serializes, machine-wide, what makes or removes the real node:
// `up` from its claim until the node's processes run, `down` from stopping
// them to the end of the teardown. Between the two, the node's live processes
// say whose it is. (flock by hand: golang.org/x/sys adds nothing over
// syscall.Flock here.)
const nodeLockPath = "/run/thv-e2e-node.lock"

// nodeLock is a held flock on nodeLockPath; release is idempotent, and the
// lock goes with the process (the descriptor is close-on-exec, so no
// component inherits it).
type nodeLock struct{ f *os.File }

func lockRealNode() (*nodeLock, error) {
	f, err := os.OpenFile(nodeLockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("real node lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("real node lock %s: %w", nodeLockPath, err)
	}
	return &nodeLock{f: f}, nil
}

func (l *nodeLock) release() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// claimRealNode makes the machine's real node this cluster's and returns the
// held node lock. While another cluster's node runs, it waits for it (a
// second CI run or checkout on the same machine) rather than breaking it.
// Then it removes what a node that no longer runs left behind (a killed run
// leaves the bridge, mounts, iptables rules and cgroups; creating the bridge
// again would fail with "File exists").
func claimRealNode(ctx context.Context, o options) (*nodeLock, error) {
	limit, err := nodeWaitLimit()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	told := false
	var lock *nodeLock
	for {
		if lock, err = lockRealNode(); err != nil {
			return nil, err
		}
		others := otherRealNode(o.state)
		if len(others) == 0 {
			break
		}
		lock.release()
		if time.Since(start) >= limit {
			return nil, fmt.Errorf("another cluster's real node is running on this machine (%s), and a machine runs one: "+
				"stop it with `e2e/cluster/cluster.sh down` in that checkout, or start this cluster without one "+
				"(THV_E2E_REAL_NODE=0); waited %s (THV_E2E_NODE_WAIT)", describeOwners(others), limit.Round(time.Second))
		}
		if !told {
			say("another cluster's real node is running on this machine (%s); a machine runs one: waiting up to %s for it to stop (THV_E2E_NODE_WAIT)",
				describeOwners(others), limit)
			told = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	left := nodeLeftovers(o.state)
	if dirExists(nodeRun) {
		left = append(left, nodeRun)
	}
	if len(left) == 0 {
		return lock, nil
	}
	say("a real node that no longer runs left %s; removing it", strings.Join(left, "; "))
	if err := nodeTeardown(o.state, o.bin); err != nil {
		lock.release()
		return nil, fmt.Errorf("removing what an earlier real node left: %w", err)
	}
	return lock, nil
}
