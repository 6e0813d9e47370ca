// Package client is the verifying Go client of a tlogd log.
package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Credentials says how to reach and authenticate to a tlogd server. The
// file names match the command-line flags of tlogctl and tlogbench: -tls-ca,
// -tls-cert, -tls-key, -token-file.
type Credentials struct {
	// CAFile is a PEM file of CA certificates to trust for the server's
	// certificate. Setting it (or CertFile) turns TLS on.
	CAFile string
	// CertFile and KeyFile are the client certificate and key (PEM) for
	// mutual TLS.
	CertFile, KeyFile string
	// TokenFile holds a bearer token (the whole file, trimmed), sent as
	// "authorization: Bearer <token>" with every call. Tokens are only sent
	// over TLS unless Insecure is set.
	TokenFile string
	// ServerName overrides the name checked in the server's certificate.
	ServerName string
	// Insecure allows a token over a connection without TLS (for a server
	// on loopback).
	Insecure bool
}

// DialOptions returns the gRPC dial options for c.
func (c Credentials) DialOptions() ([]grpc.DialOption, error) {
	useTLS := c.CAFile != "" || c.CertFile != ""
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("client: a client certificate needs both a certificate file and a key file")
	}
	var opts []grpc.DialOption
	if useTLS {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return nil, fmt.Errorf("client: read CA file: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("client: %s holds no PEM certificate", c.CAFile)
			}
		}
		if c.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("client: load client certificate: %w", err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	} else {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if c.TokenFile != "" {
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("client: read token file: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
			return nil, fmt.Errorf("client: token file %s must hold one token", c.TokenFile)
		}
		if !useTLS && !c.Insecure {
			return nil, errors.New("client: refusing to send a bearer token without TLS (set a CA file, or allow it for a local server)")
		}
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{tok, useTLS}))
	}
	return opts, nil
}

// bearer sends a bearer token with every call.
type bearer struct {
	token string
	tls   bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.tls }
