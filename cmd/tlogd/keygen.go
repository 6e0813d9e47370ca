package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/mod/sumdb/note"

	"github.com/tlogd/tlogd/internal/cli"
	"github.com/tlogd/tlogd/tlog"
)

func keygen(args []string, stdout, _ io.Writer) error {
	c := cli.New("tlogd", "keygen", "", `Writes a new Ed25519 note signing key for a log to a file (mode 0600) and
prints the verifier key that clients and auditors pin. The origin names the
log: it is the first line of every checkpoint. With -cosigner NAME it
writes a witness's cosigner key instead (C2SP tlog-cosignature, Ed25519,
signature type 0x04), for tlogd serve -witness-key; its verifier key goes
on the witness's line of a tlog-policy. Existing files are never
overwritten.`)
	origin := c.String("origin", "", "log origin, e.g. audit.example.com/log (required for a log key)")
	cosigner := c.String("cosigner", "", "cosigner name, e.g. witness.example.com/w1: write a cosigner key")
	out := c.String("out", "", "file to write the private key to (required)")
	if err := c.Parse(args, stdout, 0, 0); err != nil {
		return err
	}
	if (*origin == "") == (*cosigner == "") || *out == "" {
		return cli.UsageError{Msg: "-out and one of -origin and -cosigner are required (run with -help for usage)"}
	}
	if *cosigner != "" {
		skey, vkey, err := tlog.GenerateCosignerKey(*cosigner, rand.Reader)
		if err != nil {
			return cli.Usagef("-cosigner %q: %v", *cosigner, err)
		}
		if err := writeKeyFile(*out, skey); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote the cosigner key of %s to %s\ncosigner verifier key: %s\n", *cosigner, *out, vkey)
		return nil
	}
	vkey, err := writeNewKey(*out, *origin)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote the signing key for %s to %s\nverifier key: %s\n", *origin, *out, vkey)
	return nil
}

// writeNewKey generates a key for origin and writes it to path with mode
// 0600, failing if path exists. It returns the verifier key.
func writeNewKey(path, origin string) (string, error) {
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err == nil {
		// GenerateKey does not check the name; NewSigner does.
		_, err = note.NewSigner(skey)
	}
	if err != nil {
		return "", cli.Usagef("origin %q cannot name a note key (no spaces, no '+', valid UTF-8): %v", origin, err)
	}
	if err := writeKeyFile(path, skey); err != nil {
		return "", err
	}
	return vkey, nil
}

// writeKeyFile writes a private key to path with mode 0600, failing if path
// exists, and makes it durable.
func writeKeyFile(path, skey string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create key directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s already exists; refusing to overwrite a key", path)
	}
	if err != nil {
		return fmt.Errorf("create key file: %w", err)
	}
	if _, err := fmt.Fprintln(f, skey); err != nil {
		f.Close()
		return fmt.Errorf("write key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close key file: %w", err)
	}
	// Make the new directory entry durable too.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("sync key directory: %w", err)
		}
	}
	return nil
}
