package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"testing"

	"github.com/tlogd/tlogd/client"
)

// exampleLog starts an in-memory log for the examples.
func exampleLog() (*fakeLog, *client.Client) {
	var t testing.T
	f := newFakeLog(&t, "audit.example.com/log")
	c, err := client.New(f.serve(&t), client.Config{Origin: "audit.example.com/log", VerifierKey: f.vkey})
	if err != nil {
		log.Fatal(err)
	}
	return f, c
}

// Append returns only results it has verified: the record's commitment,
// its inclusion proof and the checkpoint's signature.
func ExampleClient_Append() {
	_, c := exampleLog()
	res, cp, err := c.Append(context.Background(), []byte(`{"action":"ROLE_ASSIGNED","target":"alice","role":"admin"}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("record at index %d, proven in the tree of size %d signed by %s\n", res[0].Index, cp.Size, cp.Origin)
	// Output: record at index 0, proven in the tree of size 1 signed by audit.example.com/log
}

// A log that rewrites its history is caught, with evidence a third party can
// check offline.
func ExampleInconsistencyError() {
	f, c := exampleLog()
	for _, p := range []string{"user alice created", "role admin granted to alice"} {
		if _, _, err := c.Append(context.Background(), []byte(p)); err != nil {
			log.Fatal(err)
		}
	}
	// The log drops the role grant from its history and carries on.
	f.mu.Lock()
	f.reset()
	f.add([]byte("user alice created"))
	f.add([]byte("user bob created"))
	f.add([]byte("user carol created"))
	f.sign()
	f.mu.Unlock()

	_, err := c.Update(context.Background())
	var ie *client.InconsistencyError
	if errors.As(err, &ie) {
		// Anyone with the log's key can check the evidence, offline.
		what, err := client.VerifyEvidence(ie.Evidence(), f.vkey)
		if err != nil {
			log.Fatal(err)
		}
		kind, _, _ := strings.Cut(what, ":")
		fmt.Printf("%s: sizes %d and %d\n", kind, ie.Old.Size, ie.New.Size)
	}
	// Output: inconsistent: sizes 2 and 3
}
