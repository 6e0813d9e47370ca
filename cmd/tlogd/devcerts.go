package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tlogd/tlogd/internal/cli"
	"github.com/tlogd/tlogd/internal/devcert"
)

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func devcerts(args []string, stdout, _ io.Writer) error {
	c := cli.New("tlogd", "devcerts", "", `Makes a certificate authority, a server certificate for localhost,
127.0.0.1 and ::1 (plus -host names), and a client certificate for each
-client name, whose principal is spiffe://tlogd.local/<name>. For
development and tests; use your own PKI in production. Files are written
to -out and never overwritten:
  ca.pem ca-key.pem server.pem server-key.pem client-<name>.pem client-<name>-key.pem`)
	out := c.String("out", "certs", "`directory` to write the files to")
	var clients, hosts listFlag
	c.Var(&clients, "client", "client `name` to issue a certificate for (repeatable)")
	c.Var(&hosts, "host", "extra DNS `name` or IP for the server certificate (repeatable)")
	if err := c.Parse(args, stdout, 0, 0); err != nil {
		return err
	}
	ca, err := devcert.NewCA("tlogd development CA", 5*365*24*time.Hour)
	if err != nil {
		return err
	}
	caKey, err := ca.KeyPEM()
	if err != nil {
		return err
	}
	srvLeaf := devcert.Leaf{CommonName: "tlogd", DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, Server: true}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			srvLeaf.IPs = append(srvLeaf.IPs, ip)
		} else {
			srvLeaf.DNSNames = append(srvLeaf.DNSNames, h)
		}
	}
	srv, err := ca.Issue(srvLeaf)
	if err != nil {
		return err
	}
	files := []outFile{
		{"ca.pem", ca.CertPEM, 0o644}, {"ca-key.pem", caKey, 0o600},
		{"server.pem", srv.CertPEM, 0o644}, {"server-key.pem", srv.KeyPEM, 0o600},
	}
	for _, name := range clients {
		if name == "" || strings.ContainsAny(name, "/ \t\n") {
			return cli.Usagef("-client %q: want a name without slashes or spaces", name)
		}
		p, err := ca.Issue(devcert.Leaf{CommonName: name, URIs: []string{"spiffe://tlogd.local/" + name}, Client: true})
		if err != nil {
			return err
		}
		files = append(files,
			outFile{"client-" + name + ".pem", p.CertPEM, 0o644},
			outFile{"client-" + name + "-key.pem", p.KeyPEM, 0o600})
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", *out, err)
	}
	for _, f := range files {
		path := filepath.Join(*out, f.name)
		if err := writeExclusive(path, f.data, f.mode); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "wrote", path)
	}
	return nil
}

type outFile struct {
	name string
	data []byte
	mode os.FileMode
}

// writeExclusive writes a new file, failing if it exists.
func writeExclusive(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s already exists; refusing to overwrite it", path)
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
