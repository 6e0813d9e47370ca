package storage

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/tlogd/tlogd/tlog"
)

// FuzzCheckpointRecord: any bytes in the checkpoint record file are read
// without a panic, and a slot is taken only if it holds a checkpoint this
// log signed.
func FuzzCheckpointRecord(f *testing.F) {
	k := newTestKey(f, "example.com/log")
	signed, err := tlog.SignCheckpoint(tlog.Checkpoint{Origin: "example.com/log", Size: 7, Root: tlog.EmptyRoot}, k.signer)
	if err != nil {
		f.Fatal(err)
	}
	slot := make([]byte, guardSlot)
	binary.BigEndian.PutUint32(slot, uint32(len(signed)))
	copy(slot[4:], signed)
	f.Add(append(bytes.Clone(slot), slot...))
	f.Add(slot[:100])
	s := &Store{verifier: k.verifier, origin: "example.com/log"}
	f.Fuzz(func(t *testing.T, b []byte) {
		for i := range int64(2) {
			cp, ok := s.parseSlot(b, i)
			if !ok {
				continue
			}
			n := binary.BigEndian.Uint32(b[i*guardSlot:])
			if _, _, err := tlog.OpenCheckpoint(b[i*guardSlot+4:i*guardSlot+4+int64(n)], k.verifier); err != nil || cp.Origin != "example.com/log" {
				t.Fatalf("slot %d taken, but it does not verify: %v", i, err)
			}
		}
	})
}

// FuzzDecodeEdgeTile: any stored bytes are decoded as a tile without a
// panic, and a tile that decodes encodes back to the same bytes.
func FuzzDecodeEdgeTile(f *testing.F) {
	t := &edgeTile{}
	for i := range 5 {
		t.rows[0] = append(t.rows[0], tlog.Hash{byte(i)})
	}
	t.rows[1] = t.rows[0][:2]
	t.rows[2] = t.rows[0][:1]
	f.Add(t.encode())
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEdgeTile(3, b)
		if err != nil {
			return
		}
		if got := e.encode(); !bytes.Equal(got, b) {
			t.Fatalf("round trip: %x → %x", b, got)
		}
	})
}
