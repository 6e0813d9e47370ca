package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/tlogd/tlogd/client"
	"github.com/tlogd/tlogd/internal/cli"
)

func consistencyCmd(e env, args []string) error {
	c := newCommand("consistency", "SIZE1 [SIZE2] | -old FILE -new FILE", `Checks that the log at one size is a prefix of the log at another: fetches
both signed checkpoints (or reads two saved with tlogctl checkpoint -out),
verifies their signatures, and verifies the log's consistency proof between
them. SIZE2 defaults to the latest size. Sizes must be sizes the log signed
a checkpoint at (it signs one per batch; tlogctl checkpoint -size N says
whether it did), since only a signed root can be checked.

If they are inconsistent, the evidence (both signed checkpoints and the
proof) is printed, written to -evidence, and the exit code is 1; anyone with
the verifier key can check it with tlogctl verify -evidence.`)
	var f connFlags
	f.register(c)
	oldFile := c.String("old", "", "`file` holding the older signed checkpoint")
	newFile := c.String("new", "", "`file` holding the newer signed checkpoint (default: the latest)")
	evidence := c.String("evidence", "tlogctl-evidence.json", "`file` to write evidence of an inconsistency to")
	if err := parse(c, args, e.stdout, 0, 2); err != nil {
		return err
	}
	if (*oldFile != "") == (len(c.Args) > 0) || (*newFile != "" && *oldFile == "") {
		return cli.UsageError{Msg: "give SIZE1 [SIZE2], or -old FILE [-new FILE] (run with -help for usage)"}
	}
	var sizes [2]uint64
	for i, a := range c.Args {
		n, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			return cli.Usagef("size %q: want a tree size (a non-negative integer)", a)
		}
		sizes[i] = n
	}
	cl, ctx, done, err := f.dialCall(e, "")
	if err != nil {
		return err
	}
	defer done()
	load := func(file string, size uint64) (client.Checkpoint, error) {
		if file == "" {
			return cl.CheckpointAt(ctx, size)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return client.Checkpoint{}, fmt.Errorf("read checkpoint: %w", err)
		}
		cp, err := cl.OpenCheckpoint(b)
		if err != nil {
			// A file the user gave, not the log's answer: exit 3.
			return client.Checkpoint{}, fmt.Errorf("checkpoint file %s: %v", file, err)
		}
		return cp, nil
	}
	older, err := load(*oldFile, sizes[0])
	if err != nil {
		return err
	}
	newer, err := load(*newFile, sizes[1])
	if err != nil {
		return err
	}
	if err := cl.VerifyConsistency(ctx, older, newer); err != nil {
		return reportInconsistency(e, f.json, err, *evidence)
	}
	if older.Size > newer.Size {
		older, newer = newer, older
	}
	if f.json {
		printJSON(e.stdout, map[string]any{"consistent": true, "old": checkpointJSON(older), "new": checkpointJSON(newer)})
		return nil
	}
	fmt.Fprintf(e.stdout, "OK: the tree of size %d (root %s) is a prefix of the tree of size %d (root %s)\n", older.Size, older.Root, newer.Size, newer.Root)
	return nil
}

// reportInconsistency prints and saves the evidence an InconsistencyError
// carries, and returns the error (exit code 1). Other errors pass through.
func reportInconsistency(e env, asJSON bool, err error, file string) error {
	var ie *client.InconsistencyError
	if !errors.As(err, &ie) {
		return err
	}
	b, _ := json.MarshalIndent(ie.Evidence(), "", "  ")
	b = append(b, '\n')
	if werr := client.WriteFileAtomic(file, b); werr != nil {
		fmt.Fprintf(e.stderr, "tlogctl: could not write the evidence to %s: %v\n", file, werr)
		file = ""
	}
	if asJSON {
		printJSON(e.stdout, map[string]any{"consistent": false, "error": err.Error(), "evidence_file": file, "evidence": ie.Evidence()})
	} else {
		fmt.Fprintf(e.stdout, "INCONSISTENT: %v\nevidence:\n%s", err, b)
		if file != "" {
			fmt.Fprintf(e.stdout, "evidence written to %s; check it with: tlogctl verify -vkey-file KEY -evidence %s\n", file, file)
		}
	}
	return err
}
