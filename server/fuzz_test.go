package server

import (
	"testing"

	"google.golang.org/protobuf/proto"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
)

// FuzzValidateEvent: any encoded event, valid or not, is checked without a
// panic; a valid one has a stable deterministic encoding (what the log
// commits to) and its subjects and postings can be built.
func FuzzValidateEvent(f *testing.F) {
	for _, ev := range history(20, 3) {
		b, _ := proto.Marshal(ev)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ev := &tlogv1.AuditEvent{}
		if proto.Unmarshal(b, ev) != nil {
			return
		}
		if validateEvent(ev) != nil {
			return
		}
		enc, err := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
		if err != nil {
			t.Fatalf("a valid event does not encode: %v", err)
		}
		back := &tlogv1.AuditEvent{}
		if err := proto.Unmarshal(enc, back); err != nil || !proto.Equal(back, ev) {
			t.Fatalf("round trip: %v", err)
		}
		again, _ := proto.MarshalOptions{Deterministic: true}.Marshal(back)
		if string(again) != string(enc) {
			t.Fatal("the deterministic encoding is not stable")
		}
		rs := newRecords([][]byte{enc}, false)
		eventRecord(&rs[0], ev)
		if len(rs[0].Subjects) != 2 || len(rs[0].Postings) < 3 {
			t.Fatalf("subjects %d, postings %d", len(rs[0].Subjects), len(rs[0].Postings))
		}
	})
}
