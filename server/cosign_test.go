package server

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/tlog"
)

// cosignedLog is a log whose witness policy names n witnesses, each a real
// tlogd server witnessing it over HTTP on 127.0.0.1, with quorum.
type cosignedLog struct {
	*testLog
	witnesses []*testLog
	urls      []string
	policy    *tlog.Policy
}

// startCosignedLog starts n witnesses (the first `down` of them with
// their HTTP listener closed: unreachable) and a log asking them for
// cosignatures under the given quorum line.
func startCosignedLog(t *testing.T, n, down int, quorum string) *cosignedLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, "example.com/test-log")
	if err != nil {
		t.Fatal(err)
	}
	logs, err := tlog.ParsePolicy([]byte("log " + vkey + "\nquorum none\n"))
	if err != nil {
		t.Fatal(err)
	}
	cl := &cosignedLog{}
	var policy strings.Builder
	fmt.Fprintf(&policy, "log %s\n", vkey)
	for i := range n {
		cskey, cvkey, err := tlog.GenerateCosignerKey(fmt.Sprintf("witness.example/w%d", i), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		cosigner, err := tlog.ParseCosignerKey(cskey, nil)
		if err != nil {
			t.Fatal(err)
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + lis.Addr().String()
		w := startLog(t, func(c *Config) { c.Witness = &WitnessConfig{Cosigner: cosigner, Logs: logs} })
		if i < down {
			lis.Close()
		} else {
			w.serveHTTPOn(t, lis)
		}
		cl.witnesses, cl.urls = append(cl.witnesses, w), append(cl.urls, url)
		fmt.Fprintf(&policy, "witness W%d %s %s/\n", i, cvkey, url)
	}
	policy.WriteString(quorum + "\n")
	if cl.policy, err = tlog.ParsePolicy([]byte(policy.String())); err != nil {
		t.Fatal(err)
	}
	cl.testLog = startLogKey(t, nil, skey, func(c *Config) { c.Cosigning = &CosigningConfig{Policy: cl.policy} })
	return cl
}

func TestAppendWaitsForWitnesses(t *testing.T) {
	cl := startCosignedLog(t, 3, 1, "group G 2 W0 W1 W2\nquorum G")
	// A witness already holds a checkpoint of this log from earlier: the
	// log's first request (old size 0) gets 409 and retries from there.
	first, err := cl.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records("before")})
	if err != nil {
		t.Fatal(err)
	}
	if code, body, _ := add(t, strings.TrimSuffix(cl.urls[2], "/"), tlog.AddCheckpoint{Checkpoint: []byte(first.GetCheckpoint())}.Marshal()); code != 200 && code != 409 {
		t.Fatalf("direct submission: %d %q", code, body)
	}
	for round := range 5 {
		resp, err := cl.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records(fmt.Sprintf("user %d created", round), fmt.Sprintf("user %d deleted", round)), IncludeProofs: true, WaitForWitnesses: true})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		c, _, cosigners, err := cl.policy.Open([]byte(resp.GetCheckpoint()))
		if err != nil {
			t.Fatalf("round %d: the answer's checkpoint does not meet the policy: %v\n%s", round, err, resp.GetCheckpoint())
		}
		if len(cosigners) != 2 {
			t.Errorf("round %d: %d cosignatures, want 2 (one witness is down)", round, len(cosigners))
		}
		for _, r := range resp.GetResults() {
			if r.GetIndex() >= c.Size {
				t.Fatalf("round %d: index %d is not in the cosigned tree of size %d", round, r.GetIndex(), c.Size)
			}
			checkInclusion(t, r.GetIndex(), r.GetLeafHash(), r.GetInclusionProof(), c)
		}
	}
	got, err := cl.client.GetCheckpoint(ctx(t), &tlogv1.GetCheckpointRequest{})
	if err != nil {
		t.Fatal(err)
	}
	c, _, _, err := cl.policy.Open([]byte(got.GetCosignedCheckpoint()))
	if err != nil || c.Size != 11 {
		t.Fatalf("GetCheckpoint's cosigned_checkpoint: size %d, %v", c.Size, err)
	}
	if !strings.Contains(scrape(t, cl.testLog), `tlogd_cosigned_tree_size 11`) {
		t.Error("tlogd_cosigned_tree_size is not 11")
	}
}

func TestAppendWaitForWitnessesFails(t *testing.T) {
	// Two of three witnesses down and a quorum of two: never met.
	cl := startCosignedLog(t, 3, 2, "group G 2 W0 W1 W2\nquorum G")
	c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := cl.client.Append(c, &tlogv1.AppendRequest{Records: records("user x created"), WaitForWitnesses: true})
	if st, _ := status.FromError(err); st.Code() != codes.DeadlineExceeded || !strings.Contains(st.Message(), "the records are durable, at indexes up to 0") {
		t.Fatalf("quorum out of reach: %v", err)
	}
	if cl.store.Head().Size != 1 {
		t.Fatalf("size %d: the record must be durable anyway", cl.store.Head().Size)
	}
	got, err := cl.client.GetCheckpoint(ctx(t), &tlogv1.GetCheckpointRequest{})
	if err != nil || got.GetCosignedCheckpoint() != "" {
		t.Fatalf("cosigned_checkpoint %q, %v; want none", got.GetCosignedCheckpoint(), err)
	}
	if !strings.Contains(cl.logs.String(), `"msg":"witness did not cosign"`) {
		t.Error("the unreachable witnesses were not logged")
	}

	// Without a witness policy, waiting is refused before anything is
	// appended.
	tl := startLog(t, nil)
	_, err = tl.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records("y"), WaitForWitnesses: true})
	if st, _ := status.FromError(err); st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "wait_for_witnesses") || tl.store.Head().Size != 0 {
		t.Fatalf("no policy: %v, size %d", err, tl.store.Head().Size)
	}
}
