package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/tlogd/tlogd/internal/cli"
	"github.com/tlogd/tlogd/tlog"
)

func proveCmd(e env, args []string) error {
	c := newCommand("prove", "", `Writes an offline proof that a record is in the log: a C2SP tlog-proof@v1
bundle (the signed checkpoint, the leaf index, the inclusion proof, and in
its extra data the entry and the commitment salt) plus the payload, as
<out>.tlog-proof and <out>.payload. Everything is verified before it is
written. tlogctl verify checks the pair with the verifier key and no network.

Name the record by -index (reads the entry's payload: needs the
read_payloads capability) or by -payload-file, whose bytes must be the
record's payload exactly (finds the record holding that payload: needs
read_payloads too). Either read is itself recorded in the log, as one more
record.`)
	var f connFlags
	f.register(c)
	var index *uint64
	c.Func("index", "leaf `index` of the record", func(v string) error {
		n, err := strconv.ParseUint(v, 10, 64)
		index = &n
		return err
	})
	payloadFile := c.String("payload-file", "", "`file` holding the record's payload")
	out := c.String("out", "", "`path` prefix of the files to write (default: record-<index> in the current directory)")
	if err := parse(c, args, e.stdout, 0, 0); err != nil {
		return err
	}
	if (index != nil) == (*payloadFile != "") {
		return cli.UsageError{Msg: "give exactly one of -index and -payload-file"}
	}
	var payload []byte
	if *payloadFile != "" {
		var err error
		if payload, err = os.ReadFile(*payloadFile); err != nil {
			return fmt.Errorf("read -payload-file: %w", err)
		}
	}
	cl, ctx, done, err := f.dialCall(e, "")
	if err != nil {
		return err
	}
	defer done()
	var proof tlog.Proof
	if payload != nil {
		if proof, _, err = cl.ProvePayload(ctx, payload); err != nil {
			return err
		}
	} else {
		cp, err := cl.Update(ctx)
		if err != nil {
			return err
		}
		i := *index
		if i >= cp.Size {
			return cli.Usagef("-index %d: the log has %d records", i, cp.Size)
		}
		for en, err := range cl.Entries(ctx, cp, i, i+1, true) {
			if err != nil {
				return err
			}
			payload = en.Payload
			if proof, _, err = cl.Prove(ctx, i, en.Entry, en.Salt); err != nil {
				return err
			}
		}
	}
	base := *out
	if base == "" {
		base = fmt.Sprintf("record-%d", proof.Index)
	}
	if err := os.WriteFile(base+".tlog-proof", proof.Marshal(), 0o644); err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	if err := os.WriteFile(base+".payload", payload, 0o600); err != nil {
		return fmt.Errorf("write payload: %w", err)
	}
	return printVerified(e, f.json, proof, payload, base+".tlog-proof")
}
