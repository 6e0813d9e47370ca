// Command tlogd runs a tamper-evident audit log: a gRPC server that appends
// records to an RFC 6962 Merkle tree stored in Pebble, signs C2SP
// checkpoints and serves inclusion and consistency proofs.
//
// Usage:
//
//	tlogd serve [flags]     run the server (creates ./tlogd-data on first start)
//	tlogd keygen [flags]    write a new log key and print its verifier key
//	tlogd token [flags]     make a bearer token and its token-file line
//	tlogd devcerts [flags]  make a CA and TLS certificates for development
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/tlogd/tlogd/internal/cli"
)

// exitUsage is the exit code for bad command lines.
const exitUsage = 2

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(args[1:], stdout, stderr)
	case "keygen":
		err = keygen(args[1:], stdout, stderr)
	case "token":
		err = token(args[1:], stdout, stderr)
	case "devcerts":
		err = devcerts(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "tlogd: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitUsage
	}
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(cli.UsageError)):
		fmt.Fprintf(stderr, "tlogd %s: %v\n", args[0], err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "tlogd %s: %v\n", args[0], err)
		return 1
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `tlogd runs a tamper-evident audit log over gRPC.

Usage:
  tlogd serve [flags]    run the server; with no flags it keeps its data and
                         key in ./tlogd-data and listens on 127.0.0.1:7400
  tlogd keygen [flags]   write a new log signing key and print its verifier key
  tlogd token [flags]    make a bearer token for a principal and the line for -token-file
  tlogd devcerts [flags] make a CA, a server certificate and client certificates
                         for development and tests (not a production PKI)

Run "tlogd <command> -help" for the flags of a command.
`)
}
