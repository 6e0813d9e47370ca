package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/tlogd/tlogd/client"
	"github.com/tlogd/tlogd/internal/cli"
	"github.com/tlogd/tlogd/tlog"
)

func verifyCmd(e env, args []string) error {
	c := newCommand("verify", "BUNDLE.tlog-proof | -evidence FILE", `Checks, offline, with only the log's verifier key:

A proof bundle (from tlogctl prove or append -bundle-dir): the checkpoint's
signature, the inclusion of the entry at its index, and the entry's
commitment to the payload in -payload-file (default: the bundle's name with
.payload instead of .tlog-proof, when that file exists; without a payload
only the entry's inclusion is checked, and the output says so).

With -witness-policy, the bundle's checkpoint must also carry cosignatures
meeting the policy's quorum (tlogctl prove with the same flag writes such
bundles).

Evidence (-evidence, from tlogctl monitor or consistency): that both
checkpoints are signed by the log and prove it misbehaved. Exit 0 means the
evidence holds (the log is proven wrong); exit 1 means it does not.`)
	var k keyFlags
	k.register(c, true)
	payloadFile := c.String("payload-file", "", "`file` holding the record's payload")
	evidence := c.String("evidence", "", "check this evidence `file` instead of a bundle")
	asJSON := c.Bool("json", false, "print JSON instead of text")
	if err := parse(c, args, e.stdout, 0, 1); err != nil {
		return err
	}
	if (*evidence != "") == (len(c.Args) == 1) {
		return cli.UsageError{Msg: "give a bundle file or -evidence FILE (run with -help for usage)"}
	}
	v, err := k.verifier()
	if err != nil {
		return err
	}
	if *evidence != "" {
		return verifyEvidence(e, *asJSON, *evidence, k.vkey)
	}
	bundle := c.Args[0]
	text, err := os.ReadFile(bundle)
	if err != nil {
		return fmt.Errorf("read bundle: %w", err)
	}
	var payload []byte
	switch {
	case *payloadFile != "":
		if payload, err = os.ReadFile(*payloadFile); err != nil {
			return fmt.Errorf("read -payload-file: %w", err)
		}
	case strings.HasSuffix(bundle, ".tlog-proof"):
		payload, err = os.ReadFile(strings.TrimSuffix(bundle, ".tlog-proof") + ".payload")
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("read payload: %w", err)
		}
	}
	proof, err := tlog.ParseProof(text)
	if err != nil {
		return &client.VerificationError{What: "bundle " + bundle, Err: err}
	}
	if err := checkBundle(proof, payload, v); err != nil {
		return &client.VerificationError{What: "bundle " + bundle, Err: err}
	}
	policy, err := k.policy(k.vkey)
	if err != nil {
		return err
	}
	if policy != nil {
		if _, _, _, err := policy.Open(proof.Checkpoint); err != nil {
			return &client.VerificationError{What: "bundle " + bundle + " cosignatures", Err: err}
		}
	}
	return printVerified(e, *asJSON, proof, payload, bundle)
}

// checkBundle verifies a parsed bundle, and payload when not nil.
func checkBundle(p tlog.Proof, payload []byte, v note.Verifier) error {
	if p.Extra == nil {
		return errors.New("the bundle has no extra data: no entry to check")
	}
	entry, salt, err := tlog.ParseRecordExtra(p.Extra)
	if err != nil {
		return err
	}
	if _, err := p.Verify(tlog.LeafHash(entry), v); err != nil {
		return err
	}
	if payload != nil {
		return tlog.VerifyRecord(entry, salt, payload)
	}
	return nil
}

// printVerified prints what a verified bundle proves.
func printVerified(e env, asJSON bool, p tlog.Proof, payload []byte, bundle string) error {
	cp, err := tlog.ParseCheckpoint(p.Checkpoint[:strings.Index(string(p.Checkpoint), "\n\n")+1])
	if err != nil {
		return err
	}
	entry, _, err := tlog.ParseRecordExtra(p.Extra)
	if err != nil {
		return err
	}
	en, err := tlog.ParseEntry(entry)
	if err != nil {
		return err
	}
	logTime := time.UnixMilli(int64(en.Time)).UTC()
	if asJSON {
		printJSON(e.stdout, map[string]any{
			"verified": true, "bundle": bundle, "origin": cp.Origin, "index": p.Index, "tree_size": cp.Size, "root": cp.Root.String(),
			"log_time": logTime, "payload_checked": payload != nil, "payload_bytes": len(payload),
		})
		return nil
	}
	fmt.Fprintf(e.stdout, "OK: record %d of %s, logged at %s, is in the tree of size %d (root %s) signed by the log\n",
		p.Index, cp.Origin, logTime.Format(time.RFC3339Nano), cp.Size, cp.Root)
	if payload != nil {
		fmt.Fprintf(e.stdout, "OK: the record commits to the payload (%d bytes)\n", len(payload))
	} else {
		fmt.Fprintln(e.stdout, "NOTE: no payload given: only the entry's inclusion was checked")
	}
	return nil
}

func verifyEvidence(e env, asJSON bool, file, vkey string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read -evidence: %w", err)
	}
	ev, err := client.ParseEvidence(b)
	if err != nil {
		return &client.VerificationError{What: "evidence " + file, Err: err}
	}
	what, err := client.VerifyEvidence(ev, vkey)
	if err != nil {
		return &client.VerificationError{What: "evidence " + file, Err: err}
	}
	if asJSON {
		printJSON(e.stdout, map[string]any{"evidence_holds": true, "finding": what})
		return nil
	}
	fmt.Fprintf(e.stdout, "EVIDENCE HOLDS: %s\n", what)
	return nil
}
