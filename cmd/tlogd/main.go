// Command tlogd runs a tamper-evident audit log: a gRPC server that appends
// records to an RFC 6962 Merkle tree stored in Pebble, signs C2SP
// checkpoints and serves inclusion and consistency proofs.
//
// Usage:
//
//	tlogd serve [flags]     run the server (creates ./tlogd-data on first start)
//	tlogd keygen [flags]    write a new log key and print its verifier key
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
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
	case errors.As(err, new(usageError)):
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

Run "tlogd <command> -help" for the flags of a command.
`)
}

// usageError marks errors in the command line (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// command is a subcommand's flag set with its help text.
type command struct {
	*flag.FlagSet
	name, synopsis string
}

func newCommand(name, synopsis string) *command {
	fs := flag.NewFlagSet("tlogd "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parse reports errors and help itself
	return &command{FlagSet: fs, name: name, synopsis: synopsis}
}

func (c *command) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: tlogd %s [flags]\n\n%s\n\nFlags:\n", c.name, c.synopsis)
	c.SetOutput(w)
	c.PrintDefaults()
	c.SetOutput(io.Discard)
}

// parse parses args, printing help to stdout for -h/-help and rejecting
// unknown flags and positional arguments.
func (c *command) parse(args []string, stdout io.Writer) error {
	if err := c.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.usage(stdout)
			return err
		}
		return usageError{err.Error() + " (run with -help for usage)"}
	}
	if c.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q (run with -help for usage)", c.Arg(0))}
	}
	return nil
}
