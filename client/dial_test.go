package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/tlogd/tlogd/internal/devcert"
)

func write(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCredentialsErrors(t *testing.T) {
	dir := t.TempDir()
	tok := write(t, dir, "tok", []byte("secret\n"))
	empty := write(t, dir, "empty", []byte("  \n"))
	notPEM := write(t, dir, "ca", []byte("not a certificate"))
	for _, tc := range []struct {
		c    Credentials
		want string
	}{
		{Credentials{CertFile: "c.pem"}, "both a certificate file and a key file"},
		{Credentials{TokenFile: tok}, "refusing to send a bearer token without TLS"},
		{Credentials{TokenFile: empty, Insecure: true}, "must hold one token"},
		{Credentials{TokenFile: filepath.Join(dir, "missing")}, "read token file"},
		{Credentials{CAFile: notPEM}, "holds no PEM certificate"},
	} {
		if _, err := tc.c.DialOptions(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
	if _, err := (Credentials{TokenFile: tok, Insecure: true}).DialOptions(); err != nil {
		t.Errorf("token over plaintext when allowed: %v", err)
	}
}

// TestCredentialsConnect dials a TLS server that requires a client
// certificate and checks what it receives: the certificate and the token.
func TestCredentialsConnect(t *testing.T) {
	ca, err := devcert.NewCA("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srvPair, err := ca.Issue(devcert.Leaf{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	cliPair, err := ca.Issue(devcert.Leaf{URIs: []string{"spiffe://example.org/me"}, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := Credentials{
		CAFile:    write(t, dir, "ca.pem", ca.CertPEM),
		CertFile:  write(t, dir, "cert.pem", cliPair.CertPEM),
		KeyFile:   write(t, dir, "key.pem", cliPair.KeyPEM),
		TokenFile: write(t, dir, "token", []byte("tlogd_abc\n")),
	}
	srvCert, err := tls.X509KeyPair(srvPair.CertPEM, srvPair.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	var gotAuth, gotURI string
	s := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{srvCert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert})),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if v := metadata.ValueFromIncomingContext(ctx, "authorization"); len(v) > 0 {
				gotAuth = v[0]
			}
			if p, ok := peer.FromContext(ctx); ok {
				if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
					gotURI = ti.State.PeerCertificates[0].URIs[0].String()
				}
			}
			return h(ctx, req)
		}))
	healthpb.RegisterHealthServer(s, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(lis)
	defer s.Stop()
	opts, err := c.DialOptions()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(lis.Addr().String(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if gotAuth != "Bearer tlogd_abc" || gotURI != "spiffe://example.org/me" {
		t.Fatalf("server saw authorization %q and certificate %q", gotAuth, gotURI)
	}
}
