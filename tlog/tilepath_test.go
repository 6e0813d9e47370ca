package tlog_test

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	sumdb "golang.org/x/mod/sumdb/tlog"

	"github.com/tlogd/tlogd/tlog"
)

// TestTilePathMatchesSumdb checks tile paths against x/mod/sumdb/tlog's,
// written independently, which carry the tile height ("tile/8/…") and call
// entry bundles "data".
func TestTilePathMatchesSumdb(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	indexes := []int64{0, 1, 999, 1000, 1001, 1234067, 999999999, 1000000000, 1<<62 + 12345}
	for range 1000 {
		indexes = append(indexes, r.Int64N(1<<uint(r.IntN(62)+1)))
	}
	for _, n := range indexes {
		for _, level := range []int{-1, 0, 1, 5, 63} {
			w := 256
			if r.IntN(2) == 0 {
				w = 1 + r.IntN(255)
			}
			st := sumdb.Tile{H: 8, L: level, N: n, W: w}
			want := strings.Replace(strings.Replace(st.Path(), "tile/8/", "tile/", 1), "tile/data/", "tile/entries/", 1)
			tp := tlog.TilePath{Level: level, Index: uint64(n), Width: w}
			if got := tp.String(); got != want {
				t.Fatalf("%+v: path %q, sumdb's %q", tp, got, want)
			}
			back, err := tlog.ParseTilePath("/" + want)
			if err != nil || back != tp {
				t.Fatalf("ParseTilePath(%q) = %+v, %v; want %+v", want, back, err, tp)
			}
		}
	}
	if got := (tlog.TilePath{Level: 0, Index: 1234067, Width: 256}).String(); got != "tile/0/x001/x234/067" {
		t.Errorf("path of 1234067 = %q, want the example of the specification", got)
	}
	max := tlog.TilePath{Level: 0, Index: 1<<64 - 1, Width: 256}
	if back, err := tlog.ParseTilePath(max.String()); err != nil || back != max {
		t.Errorf("ParseTilePath(%q) = %+v, %v", max.String(), back, err)
	}
}

func TestParseTilePathMalformed(t *testing.T) {
	for _, p := range []string{
		"", "tile", "tile/", "tile/0", "tile/0/", "tiles/0/000", "tile/0/00", "tile/0/0000",
		"tile/0/x000/001", "tile/0/001/001", "tile/0/xx01/001", "tile/0/x001", "tile/0/x001/x001",
		"tile/00/001", "tile/64/001", "tile/-1/001", "tile/+1/001", "tile/data/001", "tile/0/001.p/",
		"tile/0/001.p/0", "tile/0/001.p/256", "tile/0/001.p/01", "tile/0/001.p/1/", "tile/0/0a1",
		"tile/0/x018/x446/x744/x073/x709/x551/616", "tile/0/001/", "tile/entries/x001/",
	} {
		if got, err := tlog.ParseTilePath(p); !errors.Is(err, tlog.ErrMalformedTilePath) {
			t.Errorf("ParseTilePath(%q) = %+v, %v; want ErrMalformedTilePath", p, got, err)
		}
	}
}
