package server

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	sumdb "golang.org/x/mod/sumdb/tlog"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/tlog"
)

// serveHTTP serves tl's HTTP handler on 127.0.0.1:0 and returns its base URL.
func (tl *testLog) serveHTTP(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return tl.serveHTTPOn(t, lis)
}

// serveHTTPOn serves tl's HTTP handler on lis and returns its base URL.
func (tl *testLog) serveHTTPOn(t *testing.T, lis net.Listener) string {
	t.Helper()
	hs := &http.Server{Handler: tl.srv.HTTPHandler()}
	go hs.Serve(lis)
	t.Cleanup(func() { hs.Close() })
	return "http://" + lis.Addr().String()
}

// appendN appends n records of the form "<prefix> i" in calls of 1,000
// and returns the signed checkpoint after the last call.
func (tl *testLog) appendN(t *testing.T, prefix string, n int) string {
	t.Helper()
	var cp string
	for done := 0; done < n; {
		k := min(1000, n-done)
		req := &tlogv1.AppendRequest{}
		for i := range k {
			req.Records = append(req.Records, &tlogv1.Record{Payload: fmt.Appendf(nil, "%s %d", prefix, done+i)})
		}
		resp, err := tl.client.Append(ctx(t), req)
		if err != nil {
			t.Fatal(err)
		}
		cp, done = resp.GetCheckpoint(), done+k
	}
	return cp
}

// tileReader reads tlog-tiles hash tiles over HTTP for x/mod/sumdb/tlog,
// whose tile paths carry the height ("tile/8/L/N"); C2SP's do not.
type tileReader struct {
	t     *testing.T
	base  string
	reads int
}

func (r *tileReader) Height() int { return 8 }

func (r *tileReader) ReadTiles(tiles []sumdb.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, tile := range tiles {
		path := strings.Replace(tile.Path(), "tile/8/", "tile/", 1)
		body, code, _ := httpGet(r.t, r.base+"/"+path, "")
		if code != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %d %s", path, code, body)
		}
		out[i] = body
		r.reads++
	}
	return out, nil
}

func (r *tileReader) SaveTiles([]sumdb.Tile, [][]byte) {}

// httpGet fetches url with the given Accept-Encoding (none when empty: Go's
// transport then asks for gzip itself and decompresses).
func httpGet(t *testing.T, url, acceptEncoding string) ([]byte, int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return body, resp.StatusCode, resp.Header
}

// TestTilesWithSumdb reads the log over the tlog-tiles API with
// x/mod/sumdb/tlog's tile reader, which checks every tile against the
// checkpoint's root, and proves records and consistency from those tiles
// alone.
func TestTilesWithSumdb(t *testing.T) {
	tl := startLog(t, nil)
	base := tl.serveHTTP(t)
	old := tl.openCheckpoint(t, tl.appendN(t, "early", 300))
	// 70,000 leaves: 273 full level-0 tiles and a partial one of width
	// 112, a full level-1 tile and a partial one of 17, and a partial
	// level-2 tile of width 1 (the example of the specification).
	signed := tl.appendN(t, "record", 70000-300)
	cp := tl.openCheckpoint(t, signed)
	if cp.Size != 70000 {
		t.Fatalf("size %d", cp.Size)
	}

	body, code, h := httpGet(t, base+"/checkpoint", "")
	if code != http.StatusOK || string(body) != signed || h.Get("Content-Type") != "text/plain; charset=utf-8" || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET /checkpoint: %d %q %v", code, body, h)
	}

	tr := &tileReader{t: t, base: base}
	hr := sumdb.TileHashReader(sumdb.Tree{N: int64(cp.Size), Hash: sumdb.Hash(cp.Root)}, tr)
	for _, i := range []int64{0, 1, 255, 256, 299, 65535, 65536, 69887, 69888, 69999} {
		p, err := sumdb.ProveRecord(int64(cp.Size), i, hr)
		if err != nil {
			t.Fatalf("ProveRecord(%d) from tiles: %v", i, err)
		}
		es, err := tl.store.Entries(uint64(i), 1, false, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := sumdb.CheckRecord(p, int64(cp.Size), sumdb.Hash(cp.Root), i, sumdb.RecordHash(es[0].Entry)); err != nil {
			t.Fatalf("CheckRecord(%d): %v", i, err)
		}
	}
	p, err := sumdb.ProveTree(int64(cp.Size), int64(old.Size), hr)
	if err != nil {
		t.Fatalf("ProveTree from tiles: %v", err)
	}
	if err := sumdb.CheckTree(p, int64(cp.Size), sumdb.Hash(cp.Root), int64(old.Size), sumdb.Hash(old.Root)); err != nil {
		t.Fatalf("CheckTree %d → %d: %v", old.Size, cp.Size, err)
	}
	if tr.reads == 0 {
		t.Fatal("no tile was read")
	}
	// A full tile read again (from the cache) is the same.
	first, _, _ := httpGet(t, base+"/tile/0/001", "")
	again, code, _ := httpGet(t, base+"/tile/0/001", "")
	if code != http.StatusOK || len(first) != 8192 || !bytes.Equal(first, again) {
		t.Fatalf("full tile read twice: %d bytes, then %d bytes (%d)", len(first), len(again), code)
	}

	// Every entry bundle hashes to the level-0 tile beside it, gzipped or
	// not; the last one is the partial bundle of width 112.
	for _, n := range []uint64{0, 1, 272, 273} {
		width := 256
		if n == 273 {
			width = 112
		}
		path := tlog.TilePath{Level: tlog.EntriesLevel, Index: n, Width: width}.String()
		plain, code, h := httpGet(t, base+"/"+path, "identity")
		if code != http.StatusOK || h.Get("Content-Type") != "application/octet-stream" || h.Get("Cache-Control") != "public, max-age=31536000, immutable" || h.Get("Content-Encoding") != "" {
			t.Fatalf("GET %s: %d %v", path, code, h)
		}
		zipped, code, h := httpGet(t, base+"/"+path, "gzip")
		if code != http.StatusOK || h.Get("Content-Encoding") != "gzip" {
			t.Fatalf("GET %s with gzip: %d %v", path, code, h)
		}
		zr, err := gzip.NewReader(bytes.NewReader(zipped))
		if err != nil {
			t.Fatal(err)
		}
		unzipped, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(unzipped, plain) {
			t.Fatalf("%s: gzip body differs from the plain one (%v)", path, err)
		}
		hashes, code, _ := httpGet(t, base+"/"+tlog.TilePath{Level: 0, Index: n, Width: width}.String(), "")
		if code != http.StatusOK || len(hashes) != width*32 {
			t.Fatalf("level-0 tile %d: %d, %d bytes", n, code, len(hashes))
		}
		for i := range width {
			if len(plain) < 2 {
				t.Fatalf("%s: bundle ends at entry %d", path, i)
			}
			l := int(binary.BigEndian.Uint16(plain))
			if len(plain) < 2+l {
				t.Fatalf("%s: entry %d truncated", path, i)
			}
			if h := sumdb.RecordHash(plain[2 : 2+l]); !bytes.Equal(h[:], hashes[32*i:32*i+32]) {
				t.Fatalf("%s: entry %d does not hash to its leaf", path, i)
			}
			plain = plain[2+l:]
		}
		if len(plain) != 0 {
			t.Fatalf("%s: %d bytes after the last entry", path, len(plain))
		}
	}

	for _, tc := range []struct {
		path string
		code int
	}{
		{"/tile/0/273", http.StatusNotFound},       // the full tile does not exist yet
		{"/tile/0/273.p/113", http.StatusNotFound}, // wider than the tree
		{"/tile/0/273.p/112", http.StatusOK},
		{"/tile/0/273.p/1", http.StatusOK},
		{"/tile/1/001.p/17", http.StatusOK},
		{"/tile/1/001.p/18", http.StatusNotFound},
		{"/tile/2/000.p/1", http.StatusOK},
		{"/tile/3/000.p/1", http.StatusNotFound},
		{"/tile/entries/274.p/1", http.StatusNotFound},
		{"/tile/63/000.p/1", http.StatusNotFound},
		{"/tile/64/000.p/1", http.StatusBadRequest},
		{"/tile/0/0", http.StatusBadRequest},
		{"/tile/0/x000/001", http.StatusBadRequest},
		{"/tile/0/001.p/256", http.StatusBadRequest},
		{"/tile/0/001.p/0", http.StatusBadRequest},
		{"/tile/01/001", http.StatusBadRequest},
		{"/tile/data/001", http.StatusBadRequest},
		{"/tile/", http.StatusBadRequest},
	} {
		body, code, _ := httpGet(t, base+tc.path, "")
		if code != tc.code {
			t.Errorf("GET %s: %d %q, want %d", tc.path, code, body, tc.code)
		}
	}
	resp, err := http.Post(base+"/checkpoint", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /checkpoint: %d, want 405", resp.StatusCode)
	}
}
