package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/tlogd/tlogd/client"
	"github.com/tlogd/tlogd/internal/cli"
	"github.com/tlogd/tlogd/tlog"
)

func monitorCmd(e env, args []string) error {
	c := newCommand("monitor", "", `Checks the log against what this monitor saw before: fetches the latest
checkpoint, verifies its signature, and verifies the log's consistency proof
from the checkpoint trusted in the -state file (kept across runs, written
atomically). Then trusts the new checkpoint. Run it from cron or a systemd
timer, or keep it running with -follow.

With -full it also downloads every new entry and recomputes the tree's root,
trusting no proof; the tree's right edge is kept in <state>.tree, so each run
reads only the entries added since the last one.

If the log cannot be reconciled with the trusted checkpoint (a fork, a
rewrite or a rollback), the evidence is printed and written to -evidence and
the exit code is 1 (a rollback to a smaller tree is reported the same way;
see tlogctl verify -evidence for what the evidence proves). With -follow,
errors that are not verification failures (the server is down) are reported
and retried.`)
	var f connFlags
	f.register(c)
	state := c.String("state", "tlogctl-monitor.state", "`file` holding the latest trusted checkpoint")
	full := c.Bool("full", false, "download every entry and recompute the root")
	follow := c.Bool("follow", false, "keep checking every -interval until interrupted")
	interval := c.Duration("interval", time.Minute, "time between checks with -follow")
	evidence := c.String("evidence", "tlogctl-evidence.json", "`file` to write evidence of an inconsistency to")
	if err := parse(c, args, e.stdout, 0, 0); err != nil {
		return err
	}
	if *interval <= 0 {
		return cli.UsageError{Msg: "-interval must be positive"}
	}
	cl, done, err := f.dial(*state)
	if err != nil {
		return err
	}
	defer done()
	m := &monitor{e: e, f: &f, cl: cl, treePath: *state + ".tree"}
	if *full {
		if m.tree, err = loadTree(m.treePath); err != nil {
			return err
		}
		// The tree state is saved after the checkpoint it was checked
		// against; at that size it must match it, or the file is damaged.
		if tr, ok := cl.Trusted(); ok && m.tree.Size() == tr.Size && m.tree.Root() != tr.Root {
			return fmt.Errorf("tree state %s does not match the trusted checkpoint of size %d; remove it to replay the log from the start", m.treePath, tr.Size)
		}
	}
	for {
		err := m.check()
		switch {
		case err == nil:
		case errors.Is(err, client.ErrVerification):
			return reportInconsistency(e, f.json, err, *evidence)
		case !*follow:
			return err
		default:
			fmt.Fprintf(e.stderr, "tlogctl monitor: %v (retrying in %s)\n", err, *interval)
		}
		if !*follow {
			return nil
		}
		select {
		case <-e.ctx.Done():
			return nil
		case <-time.After(*interval):
		}
	}
}

type monitor struct {
	e        env
	f        *connFlags
	cl       *client.Client
	tree     *tlog.Tree // with -full: the tree replayed so far
	treePath string
	printed  uint64 // size last printed, to stay quiet while -follow sees nothing new
}

func (m *monitor) check() error {
	ctx, cancel := m.f.call(m.e.ctx)
	defer cancel()
	prev, hadPrev := m.cl.Trusted()
	cp, err := m.cl.CheckpointAt(ctx, 0)
	if err != nil {
		return err
	}
	replayed := uint64(0)
	if m.tree != nil && m.tree.Size() > cp.Size {
		return fmt.Errorf("tree state %s is at size %d, beyond the trusted checkpoint's %d; remove it to replay the log from the start", m.treePath, m.tree.Size(), cp.Size)
	}
	if m.tree != nil {
		// Replay checks the root even with nothing new to read.
		from := m.tree.Size()
		bar := cli.NewProgress(m.e.stderr, "replaying entries", cp.Size-from)
		start := time.Now()
		// The replay may take long: it is bounded by the interrupt, not by -timeout.
		err := m.cl.Replay(m.e.ctx, m.tree, cp, func(en client.Entry) error {
			bar.Update(en.Index + 1 - from)
			return nil
		})
		if from < cp.Size {
			bar.Done(m.tree.Size() - from)
		}
		if err != nil {
			return err
		}
		replayed = cp.Size - from
		if replayed > 0 && !cli.IsTerminal(m.e.stderr) {
			fmt.Fprintf(m.e.stderr, "replayed %d entries in %s\n", replayed, time.Since(start).Round(time.Millisecond))
		}
	}
	ctx, cancel = m.f.call(m.e.ctx)
	defer cancel()
	if err := m.cl.Trust(ctx, cp); err != nil {
		return err
	}
	if m.tree != nil {
		if err := saveTree(m.treePath, m.tree); err != nil {
			return err
		}
	}
	if m.printed == cp.Size && m.printed != 0 {
		return nil
	}
	m.printed = cp.Size
	if m.f.json {
		out := map[string]any{"checked_at": time.Now().UTC(), "checkpoint": checkpointJSON(cp), "consistent": true, "full": m.tree != nil, "replayed": replayed}
		if hadPrev {
			out["previous_size"] = prev.Size
		}
		printJSON(m.e.stdout, out)
		return nil
	}
	switch {
	case !hadPrev:
		fmt.Fprintf(m.e.stdout, "trusted the first checkpoint: size %d, root %s\n", cp.Size, cp.Root)
	case prev.Size == cp.Size:
		fmt.Fprintf(m.e.stdout, "size %d: unchanged (root %s)\n", cp.Size, cp.Root)
	default:
		fmt.Fprintf(m.e.stdout, "size %d → %d: consistent (root %s)\n", prev.Size, cp.Size, cp.Root)
	}
	if replayed > 0 {
		fmt.Fprintf(m.e.stdout, "  full check: recomputed the root from %d new entries\n", replayed)
	}
	return nil
}

// treeState is the -full state file: the compact range of the tree the
// monitor has replayed.
type treeState struct {
	Size   uint64   `json:"size"`
	Hashes [][]byte `json:"hashes"`
}

func loadTree(path string) (*tlog.Tree, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return tlog.NewTree(0, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("read tree state: %w", err)
	}
	t, err := parseTreeState(b)
	if err != nil {
		return nil, fmt.Errorf("tree state %s: %w", path, err)
	}
	return t, nil
}

// parseTreeState parses a -full state file.
func parseTreeState(b []byte) (*tlog.Tree, error) {
	var st treeState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, err
	}
	hs := make([]tlog.Hash, len(st.Hashes))
	for i, h := range st.Hashes {
		var err error
		if hs[i], err = tlog.ParseHash(h); err != nil {
			return nil, err
		}
	}
	return tlog.NewTree(st.Size, hs)
}

func saveTree(path string, t *tlog.Tree) error {
	st := treeState{Size: t.Size()}
	for _, h := range t.Hashes() {
		st.Hashes = append(st.Hashes, h[:])
	}
	b, _ := json.Marshal(st)
	if err := client.WriteFileAtomic(path, b); err != nil {
		return fmt.Errorf("save tree state: %w", err)
	}
	return nil
}
