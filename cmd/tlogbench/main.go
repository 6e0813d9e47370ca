// Command tlogbench loads a tlogd server over gRPC and reports throughput,
// latency percentiles and CPU use: durable appends (closed loop or paced at a
// fixed rate) and inclusion-proof reads. It is the load generator behind
// BENCHMARKS.md.
//
// Usage:
//
//	tlogbench [flags]
//	tlogbench report [flags]
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
	"time"

	"google.golang.org/grpc"

	"github.com/tlogd/tlogd/client"
	"github.com/tlogd/tlogd/internal/loadgen"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "report" {
		return report(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("tlogbench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("addr", "127.0.0.1:7400", "tlogd gRPC `address`")
	mode := fs.String("mode", "append", "`mode`: append (durable appends), events (durable RecordEvents of generated user-management events), prove (inclusion proofs of random leaves at the latest size) timeline (GetTimeline of -subject, 1,000 events a page, with proofs) or tiles (random full level-0 tiles from -tiles-url)")
	tilesURL := fs.String("tiles-url", "", "tiles mode: base `URL` of tlogd's tlog-tiles API (tlogd serve -http-listen)")
	clients := fs.Int("clients", 8, "concurrent callers")
	conns := fs.Int("conns", 0, "gRPC connections shared by the callers (default: one per caller, at most 16)")
	batch := fs.Int("batch", 100, "records per Append")
	payload := fs.Int("payload-bytes", 256, "payload size in bytes (at least 24)")
	proofs := fs.Bool("proofs", false, "ask Append for inclusion proofs")
	rate := fs.Float64("rate", 0, "pace all callers to this many calls per second in total (0: as fast as the server answers)")
	duration := fs.Duration("duration", 20*time.Second, "how long to measure")
	warmup := fs.Duration("warmup", 3*time.Second, "load before measuring")
	records := fs.Int64("records", 0, "append mode: stop after this many records (with -duration 0, fills the log and reports the whole run)")
	pid := fs.Int("server-pid", 0, "server process `id` whose CPU use to report (Linux)")
	tenant := fs.String("tenant", "", "timeline mode: the subject's `tenant`")
	subject := fs.String("subject", "", "timeline mode: the `subject` id")
	jsonOut := fs.Bool("json", false, "print the result as JSON")
	var creds client.Credentials
	fs.StringVar(&creds.CAFile, "tls-ca", "", "CA certificates `file` (PEM) to trust for the server; turns TLS on")
	fs.StringVar(&creds.CertFile, "tls-cert", "", "client certificate `file` (PEM) for mutual TLS")
	fs.StringVar(&creds.KeyFile, "tls-key", "", "client key `file` (PEM)")
	fs.StringVar(&creds.TokenFile, "token-file", "", "`file` holding a bearer token")
	usage := func(w io.Writer) {
		fmt.Fprint(w, "Usage: tlogbench [flags]\n       tlogbench report [flags]   (BENCHMARKS.md: see tlogbench report -help)\n\nLoads a tlogd server and reports records or proofs per second, latency\npercentiles and CPU use of the client (and of the server with -server-pid).\n\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "tlogbench: %v (run with -help for usage)\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tlogbench: unexpected argument %q (run with -help for usage)\n", fs.Arg(0))
		return 2
	}
	if *conns == 0 {
		*conns = min(*clients, 16)
	}
	creds.Insecure = true // a benchmark may send a token to a local plaintext server
	dialOpts, err := creds.DialOptions()
	if err != nil {
		fmt.Fprintf(stderr, "tlogbench: %v\n", err)
		return 2
	}
	var cc []*grpc.ClientConn
	for range max(1, *conns) {
		c, err := grpc.NewClient(*addr, dialOpts...)
		if err != nil {
			fmt.Fprintf(stderr, "tlogbench: %v\n", err)
			return 2
		}
		defer c.Close()
		cc = append(cc, c)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	cfg := loadgen.Config{
		Conns: cc, Mode: *mode, Clients: *clients, Batch: *batch, PayloadBytes: *payload, Proofs: *proofs,
		Rate: *rate, Duration: *duration, Warmup: *warmup, Records: *records, ServerPID: *pid, Tenant: *tenant, Subject: *subject, TilesURL: *tilesURL,
		Progress: func(done int64) {
			el := time.Since(start).Seconds()
			if *records > 0 {
				fmt.Fprintf(stderr, "\r%d/%d records (%.0f%%), %.0f/s   ", done, *records, 100*float64(done)/float64(*records), float64(done)/el)
			} else {
				fmt.Fprintf(stderr, "\r%.0fs: %d done, %.0f/s   ", el, done, float64(done)/el)
			}
		},
	}
	if *records > 0 && *duration == 0 {
		cfg.Warmup = 0
	}
	res, err := loadgen.Run(ctx, cfg)
	fmt.Fprintln(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "tlogbench: %v\n", err)
		return 1
	}
	if *jsonOut {
		json.NewEncoder(stdout).Encode(res)
	} else {
		fmt.Fprintln(stdout, res)
	}
	if res.Errors > 0 {
		return 1
	}
	return 0
}
