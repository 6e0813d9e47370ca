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
	"strings"

	"go.yaml.in/yaml/v3"
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
  tlogd token [flags]    make a bearer token for a principal and the line for -token-file
  tlogd devcerts [flags] make a CA, a server certificate and client certificates
                         for development and tests (not a production PKI)

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

// applyEnvAndConfig gives every flag not set on the command line its value
// from the environment (prefix + the flag name in capitals, dashes as
// underscores) or, failing that, from the YAML config file (flag name →
// value).
func (c *command) applyEnvAndConfig(prefix, configFile string) error {
	set := map[string]bool{}
	c.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var file map[string]any
	if configFile != "" {
		b, err := os.ReadFile(configFile)
		if err != nil {
			return fmt.Errorf("read -config: %w", err)
		}
		if err := yaml.Unmarshal(b, &file); err != nil {
			return usageError{fmt.Sprintf("-config %s: %v", configFile, err)}
		}
		for name := range file {
			if c.Lookup(name) == nil || name == "config" {
				return usageError{fmt.Sprintf("-config %s: unknown setting %q (settings are flag names)", configFile, name)}
			}
		}
	}
	var err error
	c.VisitAll(func(f *flag.Flag) {
		if err != nil || set[f.Name] || f.Name == "config" {
			return
		}
		env := prefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if e := f.Value.Set(v); e != nil {
				err = usageError{fmt.Sprintf("%s=%q: %v", env, v, e)}
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			if e := f.Value.Set(fmt.Sprint(v)); e != nil {
				err = usageError{fmt.Sprintf("-config %s: %s: %v", configFile, f.Name, e)}
			}
		}
	})
	return err
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
