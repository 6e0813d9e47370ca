package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/tlog"
)

// Replay downloads every entry from tree.Size() up to cp.Size, appends each
// leaf to tree, and checks that the recomputed root is cp.Root: the full
// check of a log, trusting no proof, only the entries and the signature. It
// also checks the root at every signed checkpoint the stream carries on the
// way. visit, if not nil, sees each entry (without salt and payload) in
// order; an error from it stops the replay. A root mismatch is a
// *VerificationError; tree then holds the leaves read so far.
func (c *Client) Replay(ctx context.Context, tree *tlog.Tree, cp Checkpoint, visit func(Entry) error) error {
	if tree.Size() > cp.Size {
		return fmt.Errorf("client: the tree has %d leaves, more than the checkpoint's %d", tree.Size(), cp.Size)
	}
	if tree.Size() < cp.Size {
		if err := c.replay(ctx, tree, cp, visit); err != nil {
			return err
		}
	}
	if got := tree.Root(); got != cp.Root {
		return verifyErr(fmt.Sprintf("checkpoint at size %d", cp.Size), fmt.Errorf("the root recomputed from the entries is %s, the log signed %s", got, cp.Root))
	}
	return nil
}

func (c *Client) replay(ctx context.Context, tree *tlog.Tree, cp Checkpoint, visit func(Entry) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // the stream may run past cp.Size
	stream, err := c.api.StreamEntries(ctx, &tlogv1.StreamEntriesRequest{Start: tree.Size()})
	if err != nil {
		return fmt.Errorf("client: stream entries from %d: %w", tree.Size(), err)
	}
	for tree.Size() < cp.Size {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return verifyErr(fmt.Sprintf("entries up to %d", cp.Size), fmt.Errorf("the stream ended at %d", tree.Size()))
		}
		if err != nil {
			return fmt.Errorf("client: stream entries at %d: %w", tree.Size(), err)
		}
		var mid *Checkpoint // a signed checkpoint inside this chunk
		if msg.GetCheckpoint() != "" {
			m, err := c.OpenCheckpoint([]byte(msg.GetCheckpoint()))
			if err != nil {
				return err
			}
			mid = &m
		}
		if len(msg.GetEntries()) == 0 {
			return verifyErr(fmt.Sprintf("entries from %d", tree.Size()), errors.New("the log sent an empty chunk"))
		}
		for _, e := range msg.GetEntries() {
			i := tree.Size()
			if i == cp.Size {
				break
			}
			what := fmt.Sprintf("entry %d", i)
			if e.GetIndex() != i {
				return verifyErr(what, fmt.Errorf("the log sent index %d", e.GetIndex()))
			}
			parsed, err := tlog.ParseEntry(e.GetEntry())
			if err != nil {
				return verifyErr(what, err)
			}
			leaf := tlog.LeafHash(e.GetEntry())
			tree.Append(leaf, nil)
			if mid != nil && mid.Size == tree.Size() {
				if got := tree.Root(); got != mid.Root {
					return verifyErr(fmt.Sprintf("checkpoint at size %d", mid.Size), fmt.Errorf("the root recomputed from the entries is %s, the log signed %s", got, mid.Root))
				}
			}
			if visit != nil {
				if err := visit(Entry{Index: i, Entry: e.GetEntry(), Time: time.UnixMilli(int64(parsed.Time)), LeafHash: leaf}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
