package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tlogd/tlogd/client"
	"github.com/tlogd/tlogd/internal/cli"
	"github.com/tlogd/tlogd/tlog"
)

func appendCmd(e env, args []string) error {
	c := newCommand("append", "[PAYLOAD...]", `Appends records and verifies each one: the checkpoint's signature, its
consistency with the last checkpoint trusted (-state), the record's
commitment to its payload, its leaf hash and its inclusion proof. Prints one
line per record: its index and what was verified.

Payloads come from the arguments (one record each), or from -file (the whole
file is one record, byte for byte), or else from stdin as JSON lines: every
non-empty line must be a JSON value and is one record (the line without its
surrounding white space). Records go in batches within the server's
max_records_per_append and max_request_bytes.

With -bundle-dir, a C2SP tlog-proof bundle (with the entry and salt) and the
payload are written for every record, as tlogctl prove does, so each can be
checked later with tlogctl verify and no network.`)
	var f connFlags
	f.register(c)
	file := c.String("file", "", "`file` whose whole content is one record")
	bundleDir := c.String("bundle-dir", "", "`directory` to write a proof bundle and the payload of every record to")
	state := c.String("state", "", "`file` keeping the latest trusted checkpoint across runs (optional)")
	if err := parse(c, args, e.stdout, 0, -1); err != nil {
		return err
	}
	var payloads [][]byte
	var names []string // where each payload came from, for errors
	switch {
	case *file != "" && len(c.Args) > 0:
		return cli.UsageError{Msg: "give payloads as arguments or with -file, not both"}
	case *file != "":
		b, err := os.ReadFile(*file)
		if err != nil {
			return fmt.Errorf("read -file: %w", err)
		}
		payloads, names = [][]byte{b}, []string{"-file " + *file}
	case len(c.Args) > 0:
		for i, a := range c.Args {
			payloads = append(payloads, []byte(a))
			names = append(names, fmt.Sprintf("argument %d", i+1))
		}
	default:
		var err error
		if payloads, names, err = readJSONLines(e.stdin); err != nil {
			return err
		}
	}
	for i, p := range payloads {
		if len(p) == 0 {
			return cli.Usagef("%s: the payload is empty", names[i])
		}
	}
	if *bundleDir != "" {
		if err := os.MkdirAll(*bundleDir, 0o755); err != nil {
			return fmt.Errorf("-bundle-dir: %w", err)
		}
	}
	cl, info, done, err := f.dialInfo(e, *state)
	if err != nil {
		return err
	}
	defer done()
	for i, p := range payloads {
		if limit := int(info.GetMaxPayloadBytes()); limit > 0 && len(p) > limit {
			return cli.Usagef("%s: %d bytes exceed the log's limit of %d per payload", names[i], len(p), limit)
		}
	}
	sizes := make([]int, len(payloads))
	for i, p := range payloads {
		sizes[i] = len(p)
	}
	for len(payloads) > 0 {
		batch := payloads[:batchLen(sizes, 16, int(info.GetMaxRecordsPerAppend()), int(info.GetMaxRequestBytes()))]
		payloads, sizes = payloads[len(batch):], sizes[len(batch):]
		ctx, cancel := f.call(e.ctx)
		res, cp, err := cl.Append(ctx, batch...)
		cancel()
		if err != nil {
			return err
		}
		for i, r := range res {
			bundle := ""
			if *bundleDir != "" {
				p := tlog.Proof{Extra: tlog.RecordExtra(r.Entry, r.Salt), Index: r.Index, Hashes: r.Proof, Checkpoint: cp.Note}
				if bundle, err = writeBundle(*bundleDir, p, batch[i]); err != nil {
					return err
				}
			}
			printAppended(e, f.json, r, cp, bundle)
		}
	}
	return nil
}

func printAppended(e env, asJSON bool, r client.Result, cp client.Checkpoint, bundle string) {
	if asJSON {
		printJSON(e.stdout, map[string]any{
			"index": r.Index, "duplicate": r.Duplicate, "conflict": r.Conflict, "leaf_hash": r.LeafHash.String(), "log_time": r.Time.UTC(),
			"tree_size": cp.Size, "root": cp.Root.String(), "verified": true, "bundle": bundle,
		})
		return
	}
	dup := ""
	switch {
	case r.Conflict:
		fmt.Fprintf(e.stdout, "index %d: CONFLICT: this event id was recorded there before, with other content; nothing new was recorded\n", r.Index)
		return
	case r.Duplicate:
		dup = " (duplicate: the payload was already in the log)"
	}
	fmt.Fprintf(e.stdout, "index %d%s: verified commitment, leaf hash and inclusion in tree size %d (root %s)\n", r.Index, dup, cp.Size, cp.Root)
	if bundle != "" {
		fmt.Fprintf(e.stdout, "  bundle: %s\n", bundle)
	}
}

// batchLen returns how many records (of the sizes given) go in the next
// call: at most maxRecords, and within maxBytes, with room for framing and
// what each answer carries besides the record.
func batchLen(sizes []int, perRecord, maxRecords, maxBytes int) int {
	n, size := 0, 1024
	for n < len(sizes) && (maxRecords <= 0 || n < maxRecords) {
		size += sizes[n] + perRecord
		if n > 0 && maxBytes > 0 && size > maxBytes {
			break
		}
		n++
	}
	return n
}

// readJSONLines reads one record per non-empty line, each a JSON value
// (its bytes as given, without the surrounding white space).
func readJSONLines(r io.Reader) (payloads [][]byte, names []string, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	n := 1
	for ; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if !json.Valid(line) {
			return nil, nil, cli.Usagef("stdin line %d: not a JSON value (give payloads as arguments or with -file for other data)", n)
		}
		payloads = append(payloads, bytes.Clone(line))
		names = append(names, fmt.Sprintf("stdin line %d", n))
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read stdin at line %d: %w", n, err)
	}
	if len(payloads) == 0 {
		return nil, nil, cli.UsageError{Msg: "no records: give payloads as arguments, with -file, or as JSON lines on stdin"}
	}
	return payloads, names, nil
}

// writeBundle writes record-<index>.tlog-proof and record-<index>.payload
// in dir and returns the proof's path.
func writeBundle(dir string, p tlog.Proof, payload []byte) (string, error) {
	base := filepath.Join(dir, fmt.Sprintf("record-%d", p.Index))
	if err := os.WriteFile(base+".tlog-proof", p.Marshal(), 0o644); err != nil {
		return "", fmt.Errorf("write bundle: %w", err)
	}
	if err := os.WriteFile(base+".payload", payload, 0o600); err != nil {
		return "", fmt.Errorf("write bundle: %w", err)
	}
	return base + ".tlog-proof", nil
}
