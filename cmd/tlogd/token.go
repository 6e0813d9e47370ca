package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"

	"github.com/tlogd/tlogd/internal/cli"
	"github.com/tlogd/tlogd/server"
)

func token(args []string, stdout, _ io.Writer) error {
	c := cli.New("tlogd", "token", "", `Makes a random bearer token for a principal. Prints the token, which only
the client should keep, and the line to add to the server's -token-file,
which holds only the token's SHA-256 hash.`)
	principal := c.String("principal", "", "`name` the token authenticates as; give it roles in the -policy file (required)")
	if err := c.Parse(args, stdout, 0, 0); err != nil {
		return err
	}
	if *principal == "" {
		return cli.UsageError{Msg: "-principal is required (run with -help for usage)"}
	}
	if err := server.CheckPrincipal(*principal); err != nil {
		return cli.UsageError{Msg: "-principal: " + err.Error()}
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	tok := "tlogd_" + base64.RawURLEncoding.EncodeToString(raw)
	line := server.TokenLine(tok, *principal)
	fmt.Fprintf(stdout, "token (give it to the client; it is not stored anywhere): %s\nline for -token-file: %s\n", tok, line)
	return nil
}
