package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// keyPair is a certificate with its private key, kept both parsed and as PEM.
type keyPair struct {
	cert    *x509.Certificate
	key     *rsa.PrivateKey
	certPEM []byte
	keyPEM  []byte
}

// RSA keys everywhere: every client we care about (client-go, kube-rs with
// rustls or openssl, helm) accepts them.
func newKey() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) }

func keyPEM(k *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}

func subjectKeyID(k *rsa.PrivateKey) []byte {
	der := x509.MarshalPKCS1PublicKey(&k.PublicKey)
	sum := sha1.Sum(der)
	return sum[:]
}

func newCA(cn string) (*keyPair, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          subjectKeyID(key),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return finish(der, key)
}

// leafSpec describes a certificate signed by the cluster CA.
type leafSpec struct {
	cn     string
	orgs   []string
	dns    []string
	ips    []net.IP
	server bool
	client bool
}

func (ca *keyPair) sign(s leafSpec) (*keyPair, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: s.cn, Organization: s.orgs},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  false,
		DNSNames:              s.dns,
		IPAddresses:           s.ips,
		SubjectKeyId:          subjectKeyID(key),
		AuthorityKeyId:        ca.cert.SubjectKeyId,
	}
	if s.server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if s.client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	return finish(der, key)
}

func finish(der []byte, key *rsa.PrivateKey) (*keyPair, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &keyPair{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  keyPEM(key),
	}, nil
}

func (kp *keyPair) write(dir, name string) error {
	if err := os.WriteFile(filepath.Join(dir, name+".crt"), kp.certPEM, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".key"), kp.keyPEM, 0o600)
}

// pki is everything the control plane needs, written under <state>/pki.
type pki struct {
	dir       string
	ca        *keyPair
	apiserver *keyPair
	admin     *keyPair
	kcm       *keyPair
	scheduler *keyPair
	kwok      *keyPair
	// front-proxy CA and the apiserver's client cert for it: the
	// requestheader authentication used by aggregated API servers.
	frontProxyCA     *keyPair
	frontProxyClient *keyPair
	// The real node: the kubelet's client and serving certificates, the
	// API server's client certificate toward kubelets, kube-proxy's client.
	kubelet, kubeletServing, apiserverKubeletClient, kubeProxy *keyPair
}

func (p *pki) path(name string) string { return filepath.Join(p.dir, name) }

// serviceIP is the first address of the service CIDR: the ClusterIP of the
// "kubernetes" Service, which must be a SAN of the serving certificate.
var serviceIP = net.ParseIP("10.96.0.1")

func generatePKI(dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := &pki{dir: dir}
	var err error
	if p.ca, err = newCA("thv-e2e-ca"); err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	if p.apiserver, err = p.ca.sign(leafSpec{
		cn: "kube-apiserver",
		dns: []string{
			"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster", "kubernetes.default.svc.cluster.local",
		},
		ips:    []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback, serviceIP, nodeIP},
		server: true,
	}); err != nil {
		return nil, fmt.Errorf("apiserver cert: %w", err)
	}
	if p.admin, err = p.ca.sign(leafSpec{cn: "thv-e2e-admin", orgs: []string{"system:masters"}, client: true}); err != nil {
		return nil, fmt.Errorf("admin cert: %w", err)
	}
	if p.kcm, err = p.ca.sign(leafSpec{cn: "system:kube-controller-manager", client: true}); err != nil {
		return nil, fmt.Errorf("controller-manager cert: %w", err)
	}
	if p.scheduler, err = p.ca.sign(leafSpec{cn: "system:kube-scheduler", client: true}); err != nil {
		return nil, fmt.Errorf("scheduler cert: %w", err)
	}
	// kwok acts as the kubelet of every fake node and patches arbitrary pod and
	// node status, so it gets cluster-admin like kwokctl gives it.
	if p.kwok, err = p.ca.sign(leafSpec{cn: "kwok-controller", orgs: []string{"system:masters"}, client: true}); err != nil {
		return nil, fmt.Errorf("kwok cert: %w", err)
	}
	if p.frontProxyCA, err = newCA("thv-e2e-front-proxy-ca"); err != nil {
		return nil, fmt.Errorf("front-proxy CA: %w", err)
	}
	if p.frontProxyClient, err = p.frontProxyCA.sign(leafSpec{cn: "front-proxy-client", client: true}); err != nil {
		return nil, fmt.Errorf("front-proxy client cert: %w", err)
	}
	if p.kubelet, err = p.ca.sign(leafSpec{cn: "system:node:" + nodeName, orgs: []string{"system:nodes"}, client: true}); err != nil {
		return nil, fmt.Errorf("kubelet cert: %w", err)
	}
	if p.kubeletServing, err = p.ca.sign(leafSpec{cn: nodeName, dns: []string{nodeName}, ips: []net.IP{nodeIP}, server: true}); err != nil {
		return nil, fmt.Errorf("kubelet serving cert: %w", err)
	}
	if p.apiserverKubeletClient, err = p.ca.sign(leafSpec{cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}, client: true}); err != nil {
		return nil, fmt.Errorf("apiserver kubelet-client cert: %w", err)
	}
	if p.kubeProxy, err = p.ca.sign(leafSpec{cn: "system:kube-proxy", client: true}); err != nil {
		return nil, fmt.Errorf("kube-proxy cert: %w", err)
	}
	for name, kp := range map[string]*keyPair{
		"kubelet": p.kubelet, "kubelet-serving": p.kubeletServing,
		"apiserver-kubelet-client": p.apiserverKubeletClient, "kube-proxy": p.kubeProxy,
		"ca": p.ca, "apiserver": p.apiserver, "admin": p.admin,
		"kube-controller-manager": p.kcm, "kube-scheduler": p.scheduler, "kwok": p.kwok,
		"front-proxy-ca": p.frontProxyCA, "front-proxy-client": p.frontProxyClient,
	} {
		if err := kp.write(dir, name); err != nil {
			return nil, err
		}
	}
	// Service-account token signing key pair.
	saKey, err := newKey()
	if err != nil {
		return nil, fmt.Errorf("service-account key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(p.path("sa.key"), keyPEM(saKey), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(p.path("sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
		return nil, err
	}
	return p, nil
}
