package client

import (
	"crypto/rand"
	"testing"

	sumdb "golang.org/x/mod/sumdb/tlog"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/tlog"
)

// FuzzVerifyProvenEvent: whatever a server sends as a proven event (the
// unit of timelines, queries and drift reports), verifying it never panics,
// and an event it accepts is also accepted by an independent
// implementation (x/mod/sumdb/tlog) and matches its commitment.
func FuzzVerifyProvenEvent(f *testing.F) {
	// Seeds: the two events of a two-leaf tree, each with its proof.
	var pes []*tlogv1.ProvenEvent
	var leaves []tlog.Hash
	for i := range 2 {
		ev := &tlogv1.AuditEvent{EventId: "e" + string(rune('0'+i)), OccurredAt: timestamppb.Now(), Tenant: "acme",
			Actor:  &tlogv1.Actor{Type: tlogv1.ActorType_ACTOR_TYPE_USER, Id: "admin"},
			Action: tlogv1.Action_ACTION_ROLE_ASSIGNED, Target: &tlogv1.Target{Type: tlogv1.TargetType_TARGET_TYPE_USER, Id: "alice"},
			Outcome: tlogv1.Outcome_OUTCOME_SUCCESS}
		payload, _ := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
		salt := make([]byte, tlog.SaltSize)
		rand.Read(salt)
		entry := tlog.Entry{Time: 1, Commitment: tlog.Commit(salt, payload), Links: []uint64{tlog.NoLink, tlog.NoLink}}.AppendBinary(nil)
		leaves = append(leaves, tlog.LeafHash(entry))
		pes = append(pes, &tlogv1.ProvenEvent{Event: ev, Entry: &tlogv1.Entry{Index: uint64(i), Entry: entry, Salt: salt, Payload: payload}})
	}
	root := tlog.NodeHash(leaves[0], leaves[1])
	pes[0].InclusionProof = [][]byte{leaves[1][:]}
	pes[1].InclusionProof = [][]byte{leaves[0][:]}
	for _, pe := range pes {
		b, _ := proto.Marshal(pe)
		if _, err := verifyProvenEvent(Checkpoint{Checkpoint: tlog.Checkpoint{Size: 2, Root: root}}, pe); err != nil {
			f.Fatalf("seed: %v", err)
		}
		f.Add(uint64(2), root[:], b)
	}
	f.Add(uint64(1), leaves[0][:], []byte{})
	f.Fuzz(func(t *testing.T, size uint64, rootBytes, b []byte) {
		pe := &tlogv1.ProvenEvent{}
		if proto.Unmarshal(b, pe) != nil || len(rootBytes) != tlog.HashSize {
			return
		}
		cp := Checkpoint{Checkpoint: tlog.Checkpoint{Size: size, Root: tlog.Hash(rootBytes)}}
		ev, err := verifyProvenEvent(cp, pe)
		if err != nil {
			return
		}
		proof := make(sumdb.RecordProof, len(pe.GetInclusionProof()))
		for i, h := range pe.GetInclusionProof() {
			proof[i] = sumdb.Hash(h)
		}
		if err := sumdb.CheckRecord(proof, int64(size), sumdb.Hash(cp.Root), int64(ev.Index), sumdb.Hash(tlog.LeafHash(ev.Entry.Entry))); err != nil {
			t.Fatalf("accepted an event whose proof sumdb rejects: %v", err)
		}
		if !ev.Erased {
			if err := tlog.VerifyRecord(ev.Entry.Entry, ev.Salt, ev.Payload); err != nil || ev.Event == nil {
				t.Fatalf("accepted an event that does not match its commitment: %v", err)
			}
		}
	})
}
