package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tlogd/tlogd/client"
	"github.com/tlogd/tlogd/internal/cli"
)

func exportCmd(e env, args []string) error {
	c := newCommand("export", "", `Writes the entries [-from, -to) of the log's latest checkpoint (or of the
checkpoint at -size) to a file that verifies offline: JSON lines, first a
header with the signed checkpoint and the inclusion proofs of the first and
last entries, then one line per entry (index, entry, and with -payloads its
salt and payload, base64). Every entry is verified as it is read. Check the
file with tlogctl verify-export, or client.VerifyExport in Go.

With -payloads (the default) the read needs the read_payloads capability
and is recorded in the log. The file is written to a temporary name and
renamed when complete.`)
	var f connFlags
	f.register(c)
	out := c.String("out", "", "`file` to write (required)")
	from := c.Uint64("from", 0, "first entry `index`")
	to := c.Uint64("to", 0, "entry `index` to stop before (default: the checkpoint's size)")
	size := c.Uint64("size", 0, "export against the checkpoint at this tree `size` (default: the latest)")
	payloads := c.Bool("payloads", true, "include salts and payloads")
	if err := parse(c, args, e.stdout, 0, 0); err != nil {
		return err
	}
	if *out == "" {
		return cli.UsageError{Msg: "-out is required"}
	}
	cl, done, err := f.dial("")
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := f.call(e.ctx)
	cp, err := cl.CheckpointAt(ctx, *size)
	cancel()
	if err != nil {
		return err
	}
	end := *to
	if end == 0 {
		end = cp.Size
	}
	if *from >= end || end > cp.Size {
		return cli.Usagef("-from %d -to %d: not a range inside the tree of size %d", *from, end, cp.Size)
	}
	tmp, err := os.CreateTemp(filepath.Dir(*out), filepath.Base(*out)+".tmp-*")
	if err != nil {
		return fmt.Errorf("-out: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	bar := cli.NewProgress(e.stderr, "exporting", end-*from)
	start := time.Now()
	err = cl.Export(e.ctx, tmp, cp, *from, end, *payloads, bar.Update)
	bar.Done(end - *from)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), *out)
	}
	if err != nil {
		return err
	}
	n := end - *from
	took := time.Since(start)
	if f.json {
		printJSON(e.stdout, map[string]any{"file": *out, "from": *from, "to": end, "records": n, "payloads": *payloads, "checkpoint": checkpointJSON(cp), "seconds": took.Seconds()})
		return nil
	}
	fmt.Fprintf(e.stdout, "exported %d verified records [%d, %d) of tree size %d (root %s) to %s in %s (%.0f records/s)\n",
		n, *from, end, cp.Size, cp.Root, *out, took.Round(time.Millisecond), float64(n)/took.Seconds())
	return nil
}

func verifyExportCmd(e env, args []string) error {
	c := newCommand("verify-export", "FILE", `Checks an export file offline, with only the log's verifier key: the
checkpoint's signature, that the records are exactly the entries of the
header's range in that tree (with the header's two inclusion proofs), and
every payload against its entry's commitment.`)
	var k keyFlags
	k.register(c, true)
	asJSON := c.Bool("json", false, "print JSON instead of text")
	if err := parse(c, args, e.stdout, 1, 1); err != nil {
		return err
	}
	vkey, err := k.load()
	if err != nil {
		return err
	}
	fh, err := os.Open(c.Args[0])
	if err != nil {
		return err
	}
	defer fh.Close()
	bar := cli.NewProgress(e.stderr, "verifying", 0)
	start := time.Now()
	sum, err := client.VerifyExport(fh, vkey, bar.Update)
	if err != nil {
		return err
	}
	h := sum.Header
	bar.Done(h.To - h.From)
	// What is printed comes from the signed checkpoint, not the header.
	origin := sum.Checkpoint.Origin
	took := time.Since(start)
	if *asJSON {
		printJSON(e.stdout, map[string]any{"verified": true, "origin": origin, "from": h.From, "to": h.To, "records": h.To - h.From,
			"payloads": h.Payloads, "checkpoint": checkpointJSON(client.Checkpoint{Checkpoint: sum.Checkpoint, Note: []byte(h.Checkpoint)}),
			"first_log_time": sum.First.UTC(), "last_log_time": sum.Last.UTC(), "erased": sum.Erased, "seconds": took.Seconds()})
		return nil
	}
	what := "entries (no payloads in this export)"
	if h.Payloads {
		what = "records, every payload matching its entry's commitment"
		if sum.Erased > 0 {
			what = fmt.Sprintf("records, every payload matching its entry's commitment (%d erased, by the erasure records named),", sum.Erased)
		}
	}
	fmt.Fprintf(e.stdout, "OK: %d %s, are entries [%d, %d) of %s's tree of size %d (root %s), logged %s to %s; checked in %s\n",
		h.To-h.From, what, h.From, h.To, origin, sum.Checkpoint.Size, sum.Checkpoint.Root,
		sum.First.UTC().Format(time.RFC3339), sum.Last.UTC().Format(time.RFC3339), took.Round(time.Millisecond))
	return nil
}
