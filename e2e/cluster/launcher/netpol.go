package main

// NetworkPolicy on the real node: sigs.k8s.io/kube-network-policies, built from
// its Go module (node/go.mod), runs as a DaemonSet pod on the node, as it is
// deployed on a real cluster (host network, privileged, its own ServiceAccount
// and read-only RBAC). It decides in user space, from the API's NetworkPolicies
// and pods, whether the first packet of each new connection to or from a pod
// may pass: the kernel hands it over through nfqueue.
//
// It programs that hand-over with nftables' `queue` expression, which this
// machine's kernel does not have (CONFIG_NFT_QUEUE is off; its attempt fails
// and it keeps running). The launcher installs the same hand-over with the
// iptables NFQUEUE target instead, mirroring its rules: established
// connections and the node's own root processes (the kubelet's probes) pass,
// every new connection from or to the pod subnet goes to queue 100, after
// DNAT (a Service's ClusterIP is already the pod's IP) and before SNAT. With
// --queue-bypass a packet passes while no enforcer listens (before it starts),
// as kube-network-policies' own --fail-open would.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

const (
	netpolChain   = "THV-E2E-NETPOL"
	netpolQueue   = "100"
	netpolName    = "kube-network-policies"
	netpolVersion = "v0.8.0" // node/go.mod
	netpolImage   = "localhost/thv-e2e/kube-network-policies:" + netpolVersion
)

// netpolRules are the mangle POSTROUTING hand-over (see the file comment).
func netpolRules() [][]string {
	queue := []string{"-j", "NFQUEUE", "--queue-num", netpolQueue, "--queue-bypass"}
	return [][]string{
		{"-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN"},
		{"-m", "owner", "--uid-owner", "0", "-j", "RETURN"},
		append([]string{"-s", podSubnet}, queue...),
		append([]string{"-d", podSubnet}, queue...),
	}
}

func netpolNetworkUp() error {
	if err := run("iptables", "-w", "-t", "mangle", "-N", netpolChain); err != nil {
		return err
	}
	for _, rule := range netpolRules() {
		if err := run("iptables", append([]string{"-w", "-t", "mangle", "-A", netpolChain}, rule...)...); err != nil {
			return err
		}
	}
	return run("iptables", "-w", "-t", "mangle", "-I", "POSTROUTING", "1", "-j", netpolChain)
}

func netpolNetworkDown() error {
	if exec.Command("iptables", "-w", "-t", "mangle", "-n", "-L", netpolChain).Run() != nil {
		return nil
	}
	var errs []string
	for _, args := range [][]string{
		{"-w", "-t", "mangle", "-D", "POSTROUTING", "-j", netpolChain},
		{"-w", "-t", "mangle", "-F", netpolChain},
		{"-w", "-t", "mangle", "-X", netpolChain},
	} {
		if err := run("iptables", args...); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("removing %s: %s", netpolChain, strings.Join(errs, "; "))
	}
	return nil
}

// buildNetpolImage packs the kube-network-policies binary into an image.
func buildNetpolImage(state, bin string) (string, error) {
	dir := filepath.Join(nodeDir(state), "netpol-rootfs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(bin, netpolName))
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, netpolName), b, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(nodeDir(state), "netpol.tar")
	return out, run(filepath.Join(bin, "thv-image"), "--rootfs", dir, "--tag", netpolImage, "--out", out,
		"--entrypoint", "/"+netpolName, "--user", "0:0")
}

// netpolObjects: its ServiceAccount, read-only RBAC and DaemonSet, on the real node only.
func netpolObjects() []struct {
	path string
	body map[string]any
} {
	meta := map[string]any{"name": netpolName, "namespace": "kube-system"}
	role := "thv-e2e:" + netpolName
	labels := map[string]any{"app": netpolName}
	return []struct {
		path string
		body map[string]any
	}{
		{"/api/v1/namespaces/kube-system/serviceaccounts", map[string]any{
			"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta,
		}},
		{"/apis/rbac.authorization.k8s.io/v1/clusterroles", map[string]any{
			"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
			"metadata": map[string]any{"name": role},
			"rules": []any{
				map[string]any{"apiGroups": []string{""}, "resources": []string{"pods", "namespaces", "nodes"}, "verbs": []string{"list", "watch"}},
				map[string]any{"apiGroups": []string{"networking.k8s.io"}, "resources": []string{"networkpolicies"}, "verbs": []string{"list", "watch"}},
			},
		}},
		{"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", map[string]any{
			"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
			"metadata": map[string]any{"name": role},
			"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
			"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": netpolName, "namespace": "kube-system"}},
		}},
		{"/apis/apps/v1/namespaces/kube-system/daemonsets", map[string]any{
			"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta,
			"spec": map[string]any{
				"selector": map[string]any{"matchLabels": labels},
				"template": map[string]any{
					"metadata": map[string]any{"labels": labels},
					"spec": map[string]any{
						"hostNetwork":        true,
						"serviceAccountName": netpolName,
						"priorityClassName":  "system-node-critical",
						"nodeSelector":       map[string]any{"kubernetes.io/hostname": nodeName},
						"tolerations":        []any{map[string]any{"operator": "Exists"}},
						"containers": []any{map[string]any{
							"name":            netpolName,
							"image":           netpolImage,
							"imagePullPolicy": "Never",
							"args": []string{
								"--hostname-override=" + nodeName,
								"--nfqueue-id=" + netpolQueue,
								// NRI would read pod IPs from containerd; the informer suffices here.
								"--disable-nri",
								// Kernel 6.12+ needs no DNS workaround (and this node has no DNS).
								"--netfilter-bug-1766-fix=false",
								"--metrics-bind-address=127.0.0.1:0",
								"--v=2",
							},
							"securityContext": map[string]any{"privileged": true},
						}},
					},
				},
			},
		}},
	}
}

// queueListened reports whether a process listens on nfqueue `queue` in this
// network namespace (/proc/net/netfilter/nfnetlink_queue: queue number, peer port id, ...).
func queueListened(queue string) bool {
	f, err := os.Open("/proc/net/netfilter/nfnetlink_queue")
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) > 1 && fields[0] == queue {
			return true
		}
	}
	return false
}

// startNetpol imports the enforcer's image, creates its objects and waits until
// its pod listens on the queue.
func startNetpol(ctx context.Context, o options, api *apiClient, abort func() error, remaining func() time.Duration) error {
	image, err := buildNetpolImage(o.state, o.bin)
	if err != nil {
		return fmt.Errorf("%s image: %w", netpolName, err)
	}
	if err := ctr(o.bin, "images", "import", image); err != nil {
		return err
	}
	for _, obj := range netpolObjects() {
		if _, err := api.do(ctx, "POST", obj.path, obj.body, nil); err != nil {
			return err
		}
	}
	return waitFor(ctx, netpolName+" to listen on nfqueue "+netpolQueue, min(2*time.Minute, remaining()), abort,
		func(context.Context) error {
			if !queueListened(netpolQueue) {
				return fmt.Errorf("no listener on nfqueue %s yet (kubectl -n kube-system logs ds/%s)", netpolQueue, netpolName)
			}
			return nil
		})
}
