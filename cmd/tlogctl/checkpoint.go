package main

import (
	"fmt"
	"os"

	"github.com/tlogd/tlogd/client"
)

func checkpointCmd(e env, args []string) error {
	c := newCommand("checkpoint", "", `Fetches the log's latest checkpoint (or, with -size, the one it signed at
that size), verifies its signature with the pinned key and, with -state, its
consistency with the checkpoint trusted before (then trusts the newer one).
Prints the signed checkpoint, or with -json its origin, size and root.`)
	var f connFlags
	f.register(c)
	size := c.Uint64("size", 0, "tree `size` of the checkpoint to fetch (default: the latest)")
	state := c.String("state", "", "`file` keeping the latest trusted checkpoint across runs (optional)")
	out := c.String("out", "", "also write the signed checkpoint to `file` (for tlogctl consistency -old/-new)")
	if err := parse(c, args, e.stdout, 0, 0); err != nil {
		return err
	}
	cl, ctx, done, err := f.dialCall(e, *state)
	if err != nil {
		return err
	}
	defer done()
	cp, err := cl.CheckpointAt(ctx, *size)
	if err != nil {
		return err
	}
	if err := cl.Trust(ctx, cp); err != nil {
		return err
	}
	if *out != "" {
		if err := os.WriteFile(*out, cp.Note, 0o644); err != nil {
			return fmt.Errorf("-out: %w", err)
		}
	}
	printCheckpoint(e, f.json, cp)
	return nil
}

func printCheckpoint(e env, asJSON bool, cp client.Checkpoint) {
	if asJSON {
		printJSON(e.stdout, checkpointJSON(cp))
		return
	}
	fmt.Fprintf(e.stdout, "%s", cp.Note)
}

func checkpointJSON(cp client.Checkpoint) map[string]any {
	return map[string]any{"origin": cp.Origin, "size": cp.Size, "root": cp.Root.String(), "checkpoint": string(cp.Note), "verified": true}
}
