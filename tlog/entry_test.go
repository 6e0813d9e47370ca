package tlog_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"

	"github.com/tlogd/tlogd/tlog"
)

// entryVectors pin the version 1 entry format. The hex literals were computed
// once, outside Go, from the format in entry.go and docs/DESIGN.md;
// TestEntryGolden also recomputes each commitment and leaf hash with
// crypto/sha256 alone.
var entryVectors = []struct {
	name    string
	time    uint64 // Unix milliseconds
	salt    string // hex, 16 bytes
	payload string
	commit  string // hex of Commit(salt, payload)
	entry   string // hex of the 41-byte encoding
	leaf    string // hex of LeafHash(entry)
}{
	{
		name:    "audit event",
		time:    1700000000123, // 2023-11-14T22:13:20.123Z
		salt:    "000102030405060708090a0b0c0d0e0f",
		payload: `{"event":"login","user":"alice"}`,
		commit:  "2af302cb6e5494505e82ba2c31f959690c229f87b333a2e3582250f58c1500e2",
		entry:   "01" + "0000018bcfe5687b" + "2af302cb6e5494505e82ba2c31f959690c229f87b333a2e3582250f58c1500e2",
		leaf:    "cdf604b5b967b3169a5c91bb6a1eea5ba34352a5286e4f5677f071b4f78519a8",
	},
	{
		name:    "zero time, zero salt, empty payload",
		time:    0,
		salt:    "00000000000000000000000000000000",
		payload: "",
		commit:  "2f51c8a1a08088243b5f52687722345be74984077b1f8e95bc6530c06b9a294b",
		entry:   "01" + "0000000000000000" + "2f51c8a1a08088243b5f52687722345be74984077b1f8e95bc6530c06b9a294b",
		leaf:    "278c512738768f9c0a38f8032effdba3830e0a5e95eb909d3ab8890a8d4f9481",
	},
	{
		name:    "max time, 0xff salt, empty payload",
		time:    1<<64 - 1,
		salt:    "ffffffffffffffffffffffffffffffff",
		payload: "",
		commit:  "a3d0e79525608602e73519d92beb26793faf750b42817ac8e4e632f319cb439e",
		entry:   "01" + "ffffffffffffffff" + "a3d0e79525608602e73519d92beb26793faf750b42817ac8e4e632f319cb439e",
		leaf:    "aceae97506d2cd84be4ef0d4c7f5bfc885f79896ef8e4ca0f6d3977e757a1af5",
	},
}

func TestEntryGolden(t *testing.T) {
	for _, v := range entryVectors {
		t.Run(v.name, func(t *testing.T) {
			salt, payload := mustHex(t, v.salt), []byte(v.payload)

			// Independent recomputation: SHA-256 over the documented bytes.
			var in []byte
			in = append(in, "tlogd/record/v1\x00"...)
			in = append(in, salt...)
			in = append(in, payload...)
			if got := hex.EncodeToString(sha256Sum(in)); got != v.commit {
				t.Fatalf("vector is wrong: SHA-256(prefix||salt||payload) = %s, literal %s", got, v.commit)
			}
			var enc []byte
			enc = append(enc, 0x01)
			enc = binary.BigEndian.AppendUint64(enc, v.time)
			enc = append(enc, mustHex(t, v.commit)...)
			if got := hex.EncodeToString(enc); got != v.entry {
				t.Fatalf("vector is wrong: entry = %s, literal %s", got, v.entry)
			}
			if got := hex.EncodeToString(sha256Sum(append([]byte{0x00}, enc...))); got != v.leaf {
				t.Fatalf("vector is wrong: SHA-256(0x00||entry) = %s, literal %s", got, v.leaf)
			}

			c := tlog.Commit(salt, payload)
			if got := c.String(); got != v.commit {
				t.Errorf("Commit = %s, want %s", got, v.commit)
			}
			e := tlog.Entry{Time: v.time, Commitment: c}
			b, err := e.MarshalBinary()
			if err != nil {
				t.Fatalf("MarshalBinary: %v", err)
			}
			if got := hex.EncodeToString(b); got != v.entry {
				t.Errorf("MarshalBinary = %s, want %s", got, v.entry)
			}
			if len(b) != tlog.EntrySize || tlog.EntrySize != 41 {
				t.Errorf("entry has %d bytes, EntrySize = %d, want 41", len(b), tlog.EntrySize)
			}
			prefix := []byte("prefix")
			if got := e.AppendBinary(bytes.Clone(prefix)); !bytes.Equal(got, append(prefix, b...)) {
				t.Errorf("AppendBinary(prefix) = %x, want prefix followed by %x", got, b)
			}
			if got := tlog.LeafHash(b).String(); got != v.leaf {
				t.Errorf("LeafHash = %s, want %s", got, v.leaf)
			}
			parsed, err := tlog.ParseEntry(b)
			if err != nil {
				t.Fatalf("ParseEntry: %v", err)
			}
			if !reflect.DeepEqual(parsed, e) {
				t.Errorf("ParseEntry = %+v, want %+v", parsed, e)
			}
			if err := tlog.VerifyRecord(b, salt, payload); err != nil {
				t.Errorf("VerifyRecord: %v", err)
			}
		})
	}
}

func sha256Sum(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

func TestEntryConstants(t *testing.T) {
	if tlog.EntryVersion != 0x01 || tlog.SaltSize != 16 || tlog.HashSize != 32 {
		t.Errorf("EntryVersion, SaltSize, HashSize = %#x, %d, %d; want 0x01, 16, 32", tlog.EntryVersion, tlog.SaltSize, tlog.HashSize)
	}
}

// TestCommitDomainSeparation checks that the commitment is prefixed (not
// the plain SHA-256 of salt||payload), and that the salt/payload boundary is
// fixed by VerifyRecord's salt length, since Commit itself has no length
// framing: a 17-byte "salt" that took the first payload byte hashes the same.
func TestCommitDomainSeparation(t *testing.T) {
	salt := bytes.Repeat([]byte{0x5a}, tlog.SaltSize)
	payload := []byte("payload")
	c := tlog.Commit(salt, payload)
	if c == tlog.Hash(sha256.Sum256(append(bytes.Clone(salt), payload...))) {
		t.Error("Commit is the unprefixed SHA-256 of salt||payload")
	}
	if c == tlog.Commit(payload, salt) {
		t.Error("Commit(salt, payload) == Commit(payload, salt)")
	}
	shifted := append(bytes.Clone(salt), payload[0])
	if c != tlog.Commit(shifted, payload[1:]) {
		t.Fatal("Commit has length framing; update this test and the format docs")
	}
	entry, err := tlog.Entry{Time: 1, Commitment: c}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.VerifyRecord(entry, salt, payload); err != nil {
		t.Fatalf("VerifyRecord: %v", err)
	}
	if err := tlog.VerifyRecord(entry, shifted, payload[1:]); err == nil {
		t.Error("VerifyRecord accepted a 17-byte salt that moves the salt/payload boundary")
	}
}

func TestParseEntryRejects(t *testing.T) {
	valid := mustHex(t, entryVectors[0].entry)
	tests := []struct {
		name string
		in   []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"version 0x00", append([]byte{0x00}, valid[1:]...)},
		{"version 0x02", append([]byte{0x02}, valid[1:]...)},
		{"version 0xff", append([]byte{0xff}, valid[1:]...)},
		{"version byte only", []byte{0x01}},
		{"40 bytes", valid[:40]},
		{"42 bytes", append(bytes.Clone(valid), 0x00)},
		{"82 bytes", append(bytes.Clone(valid), valid...)},
		{"version 0x02 and 42 bytes", append(append([]byte{0x02}, valid[1:]...), 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := tlog.ParseEntry(tt.in)
			if !errors.Is(err, tlog.ErrMalformedEntry) {
				t.Errorf("ParseEntry(%x) = %+v, %v; want ErrMalformedEntry", tt.in, e, err)
			}
			if !reflect.DeepEqual(e, tlog.Entry{}) {
				t.Errorf("ParseEntry(%x) returned non-zero entry %+v with error", tt.in, e)
			}
		})
	}
}

func TestVerifyRecord(t *testing.T) {
	v := entryVectors[0]
	entry, salt, payload := mustHex(t, v.entry), mustHex(t, v.salt), []byte(v.payload)
	otherSalt := bytes.Clone(salt)
	otherSalt[15] ^= 1
	otherEntry := bytes.Clone(entry)
	otherEntry[40] ^= 1
	laterEntry := bytes.Clone(entry)
	laterEntry[8] ^= 1 // the log time is not part of the commitment
	tests := []struct {
		name    string
		entry   []byte
		salt    []byte
		payload []byte
		wantErr error // nil: success; errAny: any error
	}{
		{"match", entry, salt, payload, nil},
		{"other log time", laterEntry, salt, payload, nil},
		{"other payload", entry, salt, []byte(v.payload + " "), tlog.ErrCommitmentMismatch},
		{"empty payload", entry, salt, nil, tlog.ErrCommitmentMismatch},
		{"other salt", entry, otherSalt, payload, tlog.ErrCommitmentMismatch},
		{"other commitment", otherEntry, salt, payload, tlog.ErrCommitmentMismatch},
		{"salt moved into payload", entry, salt[:15], append([]byte{salt[15]}, payload...), errAny},
		{"short salt", entry, salt[:15], payload, errAny},
		{"long salt", entry, append(bytes.Clone(salt), 0), payload, errAny},
		{"nil salt", entry, nil, payload, errAny},
		{"malformed entry", entry[:40], salt, payload, tlog.ErrMalformedEntry},
		{"entry version 2", append([]byte{0x02}, entry[1:]...), salt, payload, tlog.ErrMalformedEntry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tlog.VerifyRecord(tt.entry, tt.salt, tt.payload)
			switch {
			case tt.wantErr == nil:
				if err != nil {
					t.Errorf("VerifyRecord: %v", err)
				}
			case tt.wantErr == errAny:
				if err == nil || errors.Is(err, tlog.ErrCommitmentMismatch) {
					t.Errorf("VerifyRecord = %v, want an error other than a mismatch", err)
				}
			default:
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("VerifyRecord = %v, want %v", err, tt.wantErr)
				}
			}
		})
	}
}

var errAny = errors.New("any error")

// eventEntryVectors are version 2 entries (audit events with back-links),
// computed independently from the documented format.
var eventEntryVectors = []struct {
	name  string
	links []uint64
	entry string // hex
	leaf  string // hex of SHA-256(0x00 || entry)
}{
	{
		name:  "actor's previous event at 41, target's first event",
		links: []uint64{41, tlog.NoLink},
		entry: "02" + "0000018bcfe5687b" + "8856bec4adf57896c28caa0ce8861c230b3d89e8f6403c8373362f297ac73b77" + "02" + "0000000000000029" + "ffffffffffffffff",
		leaf:  "bdad6cc9d69e8b72407efbb5a786fe138536e326972a1579e0d3bfe62eb34ffb",
	},
	{
		name:  "one subject, previous event at 7",
		links: []uint64{7},
		entry: "02" + "0000018bcfe5687b" + "8856bec4adf57896c28caa0ce8861c230b3d89e8f6403c8373362f297ac73b77" + "01" + "0000000000000007",
		leaf:  "8a5d666430757ec0115ed7293576c953c28e8ccc4029baf47244cac1ecadbcdc",
	},
}

func TestEventEntryGolden(t *testing.T) {
	salt := mustHex(t, "000102030405060708090a0b0c0d0e0f")
	payload := []byte(`{"action":"ROLE_ASSIGNED","actor":"admin","target":"alice"}`)
	for _, v := range eventEntryVectors {
		t.Run(v.name, func(t *testing.T) {
			e := tlog.Entry{Time: 1700000000123, Commitment: tlog.Commit(salt, payload), Links: v.links}
			b, err := e.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(b); got != v.entry || len(b) != e.Size() {
				t.Fatalf("MarshalBinary = %s (%d bytes), want %s", got, e.Size(), v.entry)
			}
			if got := hex.EncodeToString(sha256Sum(append([]byte{0x00}, b...))); got != v.leaf || tlog.LeafHash(b).String() != v.leaf {
				t.Fatalf("leaf hash %s, want %s", got, v.leaf)
			}
			parsed, err := tlog.ParseEntry(b)
			if err != nil || !reflect.DeepEqual(parsed, e) {
				t.Fatalf("ParseEntry = %+v, %v; want %+v", parsed, err, e)
			}
			if err := tlog.VerifyRecord(b, salt, payload); err != nil {
				t.Fatal(err)
			}
			// Every truncation and extension is malformed.
			for n := 0; n < len(b); n++ {
				if _, err := tlog.ParseEntry(b[:n]); !errors.Is(err, tlog.ErrMalformedEntry) {
					t.Fatalf("ParseEntry of %d of %d bytes: %v", n, len(b), err)
				}
			}
			if _, err := tlog.ParseEntry(append(bytes.Clone(b), 0)); !errors.Is(err, tlog.ErrMalformedEntry) {
				t.Fatalf("ParseEntry of a longer entry: %v", err)
			}
		})
	}
	for _, n := range []int{0, 3} {
		if _, err := (tlog.Entry{Links: make([]uint64, n)}).MarshalBinary(); !errors.Is(err, tlog.ErrMalformedEntry) {
			t.Errorf("MarshalBinary with %d links: %v", n, err)
		}
	}
}
