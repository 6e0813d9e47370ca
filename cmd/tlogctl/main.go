// Command tlogctl is the verifying command-line client of a tlogd log, for
// the services that append to it and for the auditors who check it. Every
// checkpoint, proof and entry it receives is verified against the log's
// pinned verifier key; bundles, exports and evidence it writes verify
// offline.
//
// Exit codes: 0 success, 1 verification failure (the log or a file is
// provably wrong), 2 bad command line, 3 the check could not be done (the
// server is unreachable, a call was refused, a file is unreadable).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tlogd/tlogd/client"
	"github.com/tlogd/tlogd/internal/cli"
	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/tlog"
)

// The exit codes.
const (
	exitOK          = 0
	exitVerify      = 1
	exitUsage       = 2
	exitOperational = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is what a subcommand works with.
type env struct {
	ctx            context.Context
	stdin          io.Reader
	stdout, stderr io.Writer
}

var commands = []struct {
	name, summary string
	run           func(e env, args []string) error
}{
	{"append", "append records and verify their inclusion", appendCmd},
	{"checkpoint", "fetch, verify and print the latest (or a past) checkpoint", checkpointCmd},
	{"prove", "write an offline proof bundle for a record, by index or payload", proveCmd},
	{"verify", "check a proof bundle or inconsistency evidence offline", verifyCmd},
	{"consistency", "check that the log at one size extends the log at another", consistencyCmd},
	{"monitor", "follow the log, checking every checkpoint against the last one", monitorCmd},
	{"export", "write verified entries (and payloads) to a file that verifies offline", exportCmd},
	{"verify-export", "check an export file offline", verifyExportCmd},
	{"record", "record user-management audit events (JSON lines) and verify them", recordCmd},
	{"timeline", "print a subject's verified timeline; exit 1 if an event is missing", timelineCmd},
	{"query", "search audit events by tenant, subject, action, outcome and time, verified", queryCmd},
	{"drift", "report grants that drifted from an approved baseline, from verified events", driftCmd},
	{"erase", "erase a subject's event payloads on a lawful request (admin); recorded in the log", eraseCmd},
	{"info", "print the log's origin, key and limits as the server reports them", infoCmd},
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name := args[0]
	if name == "help" || name == "-h" || name == "-help" || name == "--help" {
		usage(stdout)
		return exitOK
	}
	for _, c := range commands {
		if c.name != name {
			continue
		}
		err := c.run(env{ctx, stdin, stdout, stderr}, args[1:])
		code := exitOperational
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.As(err, new(cli.UsageError)):
			fmt.Fprintf(stderr, "tlogctl %s: %v\n", name, err)
			code = exitUsage
		case errors.Is(err, client.ErrVerification):
			fmt.Fprintf(stderr, "tlogctl %s: VERIFICATION FAILED: %v\n", name, err)
			code = exitVerify
		case status.Code(err) == codes.InvalidArgument || status.Code(err) == codes.OutOfRange:
			// The server refused what we sent: bad input, not an outage.
			fmt.Fprintf(stderr, "tlogctl %s: %v\n", name, err)
			code = exitUsage
		default:
			fmt.Fprintf(stderr, "tlogctl %s: %v\n", name, err)
		}
		if wantsJSON(args[1:]) {
			// A script reading stdout learns of the failure there too.
			printJSON(stdout, map[string]any{"error": err.Error(), "exit_code": code, "verification_failed": code == exitVerify})
		}
		return code
	}
	fmt.Fprintf(stderr, "tlogctl: unknown command %q\n\n", name)
	usage(stderr)
	return exitUsage
}

// wantsJSON reports whether a command line asks for JSON output.
func wantsJSON(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "-json" || a == "--json" || a == "-json=true" || a == "--json=true" {
			return true
		}
	}
	return false
}

func usage(w io.Writer) {
	fmt.Fprint(w, "tlogctl checks a tlogd audit log: every checkpoint, proof and entry it\nreceives is verified against the log's pinned verifier key.\n\nUsage:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  tlogctl %-14s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run "tlogctl <command> -help" for the flags of a command. Every flag can also
come from the environment: TLOGCTL_ and the flag name in capitals, dashes as
underscores (TLOGCTL_ADDR, TLOGCTL_VKEY_FILE).

Exit codes: 0 success; 1 verification failed (the log or a file is provably
wrong); 2 bad command line or input the server refused as invalid; 3 the
check could not be done (server unreachable, call refused, nothing found,
file unreadable).
`)
}

// newCommand returns a tlogctl subcommand; its help ends with what every
// subcommand shares.
func newCommand(name, args, synopsis string) *cli.Command {
	return cli.New("tlogctl", name, args, synopsis+`

Exit codes: 0 ok; 1 verification failed; 2 bad command line or input; 3
could not check. Every flag can also be set as TLOGCTL_<FLAG> in the environment
(TLOGCTL_VKEY_FILE); the command line wins.`)
}

// keyFlags are the flags that pin the log's key.
type keyFlags struct {
	c                      *cli.Command
	vkey, vkeyFile, origin string
	policyFile             string
}

func (k *keyFlags) register(c *cli.Command, required bool) {
	k.c = c
	need := "; this or -vkey-file is required"
	if !required {
		need = " (optional)"
	}
	c.StringVar(&k.vkey, "vkey", "", "the log's verifier `key` (note vkey text, as tlogd prints it at start)"+need)
	c.StringVar(&k.vkeyFile, "vkey-file", "", "`file` holding the log's verifier key")
	c.StringVar(&k.origin, "origin", "", "the log's `origin` (default: the verifier key's name, which must match)")
	c.StringVar(&k.policyFile, "witness-policy", "", "C2SP tlog-policy `file` listing the log and its witnesses: require checkpoints cosigned by its quorum")
}

// policy returns the -witness-policy, nil without one. It must list the
// log with the pinned key.
func (k *keyFlags) policy(vkey string) (*tlog.Policy, error) {
	if k.policyFile == "" {
		return nil, nil
	}
	text, err := os.ReadFile(k.policyFile)
	if err != nil {
		return nil, fmt.Errorf("read -witness-policy: %w", err)
	}
	p, err := tlog.ParsePolicy(text)
	if err != nil {
		return nil, cli.Usagef("-witness-policy %s: %v", k.policyFile, err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	if pv, ok := p.Log(v.Name()); !ok || pv.KeyHash() != v.KeyHash() {
		return nil, cli.Usagef("-witness-policy %s does not list the log %s with the pinned verifier key", k.policyFile, v.Name())
	}
	return p, nil
}

// load returns the verifier key text.
func (k *keyFlags) load() (string, error) {
	if k.vkey != "" && k.vkeyFile != "" && k.c != nil {
		// One of them from the environment: the command line wins.
		switch {
		case k.c.OnCommandLine("vkey") && !k.c.OnCommandLine("vkey-file"):
			k.vkeyFile = ""
		case k.c.OnCommandLine("vkey-file") && !k.c.OnCommandLine("vkey"):
			k.vkey = ""
		}
	}
	switch {
	case k.vkey != "" && k.vkeyFile != "":
		return "", cli.UsageError{Msg: "give -vkey or -vkey-file, not both"}
	case k.vkeyFile != "":
		b, err := os.ReadFile(k.vkeyFile)
		if err != nil {
			return "", fmt.Errorf("read -vkey-file: %w", err)
		}
		if k.vkey = strings.TrimSpace(string(b)); k.vkey == "" {
			return "", cli.Usagef("-vkey-file %s is empty", k.vkeyFile)
		}
	case k.vkey == "":
		return "", cli.UsageError{Msg: "-vkey or -vkey-file is required: pin the log's verifier key (tlogd prints it at start; tlogctl info shows what the server claims)"}
	}
	v, err := note.NewVerifier(k.vkey)
	if err != nil {
		return "", cli.Usagef("verifier key %q: not a note verifier key (name+hash+base64 key): %v", k.vkey, err)
	}
	if k.origin != "" && k.origin != v.Name() {
		return "", cli.Usagef("-origin %q does not match the verifier key, which is for %q", k.origin, v.Name())
	}
	return k.vkey, nil
}

func (k *keyFlags) verifier() (note.Verifier, error) {
	vkey, err := k.load()
	if err != nil {
		return nil, err
	}
	return note.NewVerifier(vkey)
}

// connFlags are the flags of the commands that talk to a server.
type connFlags struct {
	keyFlags
	keyOptional bool // set before register: the command works without a key
	addr        string
	creds       client.Credentials
	timeout     time.Duration
	json        bool
}

func (f *connFlags) register(c *cli.Command) {
	f.keyFlags.register(c, !f.keyOptional)
	c.StringVar(&f.addr, "addr", "127.0.0.1:7400", "tlogd gRPC `address`")
	c.StringVar(&f.creds.CAFile, "tls-ca", "", "CA certificates `file` (PEM) to trust for the server; turns TLS on")
	c.StringVar(&f.creds.CertFile, "tls-cert", "", "client certificate `file` (PEM) for mutual TLS")
	c.StringVar(&f.creds.KeyFile, "tls-key", "", "client private key `file` (PEM)")
	c.StringVar(&f.creds.TokenFile, "token-file", "", "`file` holding a bearer token (see tlogd token)")
	c.StringVar(&f.creds.ServerName, "tls-server-name", "", "`name` to check in the server's certificate (default: the host of -addr)")
	c.BoolVar(&f.creds.Insecure, "insecure", false, "allow sending a token without TLS (for a server on loopback)")
	c.DurationVar(&f.timeout, "timeout", 30*time.Second, "give up a call after this `duration`")
	c.BoolVar(&f.json, "json", false, "print JSON instead of text")
}

// parse parses the command line and the TLOGCTL_ environment.
func parse(c *cli.Command, args []string, stdout io.Writer, minArgs, maxArgs int) error {
	if err := c.Parse(args, stdout, minArgs, maxArgs); err != nil {
		return err
	}
	if err := c.ApplyEnvAndConfig("TLOGCTL_", ""); err != nil {
		return err
	}
	if f := c.Lookup("timeout"); f != nil {
		if d, _ := time.ParseDuration(f.Value.String()); d <= 0 {
			return cli.Usagef("-timeout %s: must be positive", f.Value)
		}
	}
	return nil
}

// connect opens a connection to -addr with the credential flags.
func (f *connFlags) connect() (*grpc.ClientConn, error) {
	opts, err := f.creds.DialOptions()
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(f.addr, append(opts, grpc.WithUserAgent("tlogctl"))...)
	if err != nil {
		return nil, fmt.Errorf("-addr %s: %w", f.addr, err)
	}
	return conn, nil
}

// dial connects and returns a verifying client; statePath may be empty.
func (f *connFlags) dial(statePath string) (*client.Client, func(), error) {
	vkey, err := f.load()
	if err != nil {
		return nil, nil, err
	}
	policy, err := f.policy(vkey)
	if err != nil {
		return nil, nil, err
	}
	conn, err := f.connect()
	if err != nil {
		return nil, nil, err
	}
	c, err := client.New(conn, client.Config{Origin: f.origin, VerifierKey: vkey, StatePath: statePath, Policy: policy})
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return c, func() { conn.Close() }, nil
}

// dialInfo dials and asks the log for its limits.
func (f *connFlags) dialInfo(e env, statePath string) (*client.Client, *tlogv1.GetLogInfoResponse, func(), error) {
	cl, done, err := f.dial(statePath)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := f.call(e.ctx)
	defer cancel()
	info, err := cl.LogInfo(ctx)
	if err != nil {
		done()
		return nil, nil, nil, err
	}
	return cl, info, done, nil
}

// dialCall dials and returns a context for one step of work, bounded by
// -timeout; done releases both.
func (f *connFlags) dialCall(e env, statePath string) (*client.Client, context.Context, func(), error) {
	cl, done, err := f.dial(statePath)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := f.call(e.ctx)
	return cl, ctx, func() { cancel(); done() }, nil
}

// call returns a context for one step of work, bounded by -timeout.
func (f *connFlags) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, f.timeout)
}

// printJSON writes v as one line of JSON.
func printJSON(w io.Writer, v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(w, "%s\n", b)
}

// count says "1 event", "2 events".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
