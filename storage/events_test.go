package storage

import (
	"crypto/sha256"
	"math"
	"slices"
	"testing"

	"github.com/tlogd/tlogd/tlog"
)

// eventRecord is a record naming subjects, joining a posting list per
// subject.
func eventRecord(payload string, subjects ...string) Record {
	r := makeRecord([]byte(payload))
	for _, s := range subjects {
		h := tlog.Hash(sha256.Sum256([]byte(s)))
		r.Subjects = append(r.Subjects, h)
		r.Postings = append(r.Postings, Posting{Term: h[:], Value: []byte(s)})
	}
	return r
}

func TestEventLinksAndPostings(t *testing.T) {
	k := newTestKey(t, "example.com/log")
	dir := t.TempDir()
	s := openStore(t, dir, nil, k)
	m := &sumdbTree{}
	apply(t, s, m, &Batch{Time: 1, Records: []Record{
		eventRecord("0: admin creates alice", "admin", "alice"),
		makeRecord([]byte("1: a plain record")),
		eventRecord("2: admin grants alice", "admin", "alice"),
	}})
	apply(t, s, m, &Batch{Time: 2, Records: []Record{
		eventRecord("3: alice changes her password", "alice", "alice"),
		eventRecord("0: admin creates alice", "admin", "alice"), // a duplicate: no leaf, no link
		eventRecord("4: bob logs in", "bob", "bob"),
	}})
	s.Close()
	s = openStore(t, dir, nil, k) // the latest indexes survive a reopen
	defer s.Close()
	apply(t, s, m, &Batch{Time: 3, Records: []Record{eventRecord("5: admin revokes alice", "admin", "alice")}})

	want := map[uint64][]uint64{
		0: {tlog.NoLink, tlog.NoLink},
		1: nil,
		2: {0, 0},
		3: {2, 2},
		4: {tlog.NoLink, tlog.NoLink},
		5: {2, 3},
	}
	es, err := s.Entries(0, 6, false, math.MaxInt)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		parsed, err := tlog.ParseEntry(e.Entry)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(parsed.Links, want[e.Index]) {
			t.Errorf("entry %d links %v, want %v", e.Index, parsed.Links, want[e.Index])
		}
	}
	alice := sha256.Sum256([]byte("alice"))
	hits, err := s.Postings(alice[:], 0, math.MaxUint64, 100, false)
	if err != nil {
		t.Fatal(err)
	}
	var idx []uint64
	for _, h := range hits {
		idx = append(idx, h.Index)
	}
	if !slices.Equal(idx, []uint64{0, 2, 3, 5}) || string(hits[0].Value) != "alice" {
		t.Fatalf("alice's postings: %v", hits)
	}
	last, err := s.Postings(alice[:], 0, 5, 1, true)
	if err != nil || len(last) != 1 || last[0].Index != 3 {
		t.Fatalf("alice's last posting below 5: %v %v", last, err)
	}
	bob := sha256.Sum256([]byte("bob"))
	if hits, _ := s.Postings(bob[:], 0, 4, 10, false); len(hits) != 0 {
		t.Fatalf("bob's postings below 4: %v", hits)
	}
}
