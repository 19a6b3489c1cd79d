package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// freePort picks an unused loopback TCP port below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range). A port from that range, even free when chosen, can
// be taken before its component binds it by the local end of any outgoing loopback
// connection (the API server to etcd, the kubelet to the API server, ...): CI saw
// kube-proxy's healthz port taken that way. Below the range only listeners compete.
// NodePorts (30000-32767) and the components' well-known ports (10248-10260) are
// avoided too.
func freePort(taken map[int]bool) (int, error) {
	const floor = 10000
	ceiling := min(ephemeralLow(), 30000)
	if ceiling-floor < 1000 {
		return 0, fmt.Errorf("the ephemeral port range starts at %d; no room below it for the cluster's ports", ceiling)
	}
	for range 200 {
		port := floor + rand.IntN(ceiling-floor)
		if taken[port] || (port >= 10248 && port <= 10260) {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		taken[port] = true
		return port, nil
	}
	return 0, fmt.Errorf("no free port found between %d and %d", floor, ceiling)
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768 when unknown).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 32768
	}
	low, err := strconv.Atoi(f[0])
	if err != nil || low <= 0 {
		return 32768
	}
	return low
}

// kubeconfig renders a self-contained kubeconfig (certificates inlined).
func kubeconfig(server string, ca []byte, user string, cert, key []byte) []byte {
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: thv-e2e
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: thv-e2e
  context:
    cluster: thv-e2e
    user: %s
    namespace: default
current-context: thv-e2e
preferences: {}
`, server, b64(ca), user, b64(cert), b64(key), user)
}

// apiClient talks to the kube-apiserver with the admin client certificate.
type apiClient struct {
	base string
	http *http.Client
}

func newAPIClient(base string, caPEM, certPEM, keyPEM []byte) (*apiClient, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("bad CA PEM")
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:           nil,
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
	}
	return &apiClient{base: base, http: &http.Client{Transport: tr, Timeout: 10 * time.Second}}, nil
}

func (c *apiClient) do(ctx context.Context, method, path string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s: %w", path, err)
		}
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	return resp.StatusCode, nil
}

// probe GETs url and reports whether it answered 200. insecure skips server
// certificate verification (for the self-signed serving certs of the
// controller-manager and scheduler).
func probe(ctx context.Context, url string, insecure bool) error {
	tr := &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{InsecureSkipVerify: insecure}} //nolint:gosec // loopback health probe
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := cl.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return nil
}

// fakeNode is the Node object kwok manages (annotation kwok.x-k8s.io/node=fake).
// It carries no taint, so ordinary workloads schedule onto it.
func fakeNode(name, kubeVersion string) map[string]any {
	res := map[string]any{"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "1Ti"}
	return map[string]any{
		"apiVersion": "v1",
		"kind":       "Node",
		"metadata": map[string]any{
			"name": name,
			"annotations": map[string]any{
				"kwok.x-k8s.io/node":           "fake",
				"node.alpha.kubernetes.io/ttl": "0",
			},
			"labels": map[string]any{
				"type":                          "kwok",
				"kubernetes.io/arch":            "amd64",
				"kubernetes.io/os":              "linux",
				"kubernetes.io/hostname":        name,
				"kubernetes.io/role":            "agent",
				"node-role.kubernetes.io/agent": "",
			},
		},
		"spec": map[string]any{},
		"status": map[string]any{
			"allocatable": res,
			"capacity":    res,
			"nodeInfo": map[string]any{
				"architecture":            "amd64",
				"operatingSystem":         "linux",
				"kubeletVersion":          kubeVersion,
				"kubeProxyVersion":        kubeVersion,
				"containerRuntimeVersion": "kwok",
				"kernelVersion":           "kwok",
				"osImage":                 "kwok",
			},
		},
	}
}

type nodeObj struct {
	Spec struct {
		Taints []struct {
			Key    string `json:"key"`
			Effect string `json:"effect"`
		} `json:"taints"`
	} `json:"spec"`
	Status struct {
		Conditions []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		} `json:"conditions"`
	} `json:"status"`
}

// nodeReady: Ready=True and the not-ready/unreachable taints the node
// lifecycle controller puts on new nodes are gone, so pods can schedule.
func nodeReady(n *nodeObj) (bool, string) {
	ready := false
	for _, c := range n.Status.Conditions {
		if c.Type == "Ready" && c.Status == "True" {
			ready = true
		}
	}
	if !ready {
		return false, "condition Ready is not True"
	}
	for _, t := range n.Spec.Taints {
		if strings.HasPrefix(t.Key, "node.kubernetes.io/") {
			return false, "taint " + t.Key + ":" + t.Effect + " still present"
		}
	}
	return true, ""
}

// waitFor polls check every interval until it succeeds, ctx ends, timeout
// passes, or abort returns an error (a component died).
func waitFor(ctx context.Context, what string, timeout time.Duration, abort func() error, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if abort != nil {
			if err := abort(); err != nil {
				return err
			}
		}
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		last = check(cctx)
		ccancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("timed out after %s waiting for %s: %v", timeout, what, last)
			}
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func envInt(name string, def int) int {
	if v := os.Getenv(name); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			return n
		}
	}
	return def
}

// profilingFlag is the API server's --profiling: off unless THV_E2E_PROFILING=1, which
// serves Go's CPU and heap profiles at /debug/pprof/ to cluster-admin (a benchmark
// that asks where the API server's time goes; docs/performance.md).
func profilingFlag() string {
	return "--profiling=" + strconv.FormatBool(os.Getenv("THV_E2E_PROFILING") == "1")
}
