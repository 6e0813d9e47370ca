package tlog

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// C2SP tlog-tiles resource paths: hash tiles "tile/<L>/<N>[.p/<W>]" and
// entry bundles "tile/entries/<N>[.p/<W>]", where <N> is the index in
// zero-padded groups of three digits, all but the last prefixed with "x"
// (1234067 is "x001/x234/067"), and <W> the width of a partial tile.

// TileWidth is the width of a full C2SP tile: 256 hashes or entries.
const TileWidth = 256

// ErrMalformedTilePath is returned for a path that is not a canonical
// tlog-tiles path.
var ErrMalformedTilePath = errors.New("tlog: malformed tile path")

// EntriesLevel is the Level of a TilePath that names an entry bundle.
const EntriesLevel = -1

// TilePath names a hash tile (Level 0 to 63) or an entry bundle (Level
// EntriesLevel). Width is 256 for a full tile, 1 to 255 for a partial one.
type TilePath struct {
	Level int
	Index uint64
	Width int
}

// String returns the path, without a leading slash.
func (t TilePath) String() string {
	var b strings.Builder
	b.WriteString("tile/")
	if t.Level == EntriesLevel {
		b.WriteString("entries")
	} else {
		b.WriteString(strconv.Itoa(t.Level))
	}
	b.WriteByte('/')
	var groups []string
	n := t.Index
	for {
		groups = append(groups, fmt.Sprintf("%03d", n%1000))
		if n /= 1000; n == 0 {
			break
		}
	}
	for i := len(groups) - 1; i >= 0; i-- {
		if i > 0 {
			b.WriteByte('x')
		}
		b.WriteString(groups[i])
		if i > 0 {
			b.WriteByte('/')
		}
	}
	if t.Width < TileWidth {
		fmt.Fprintf(&b, ".p/%d", t.Width)
	}
	return b.String()
}

// ParseTilePath parses a tile path (with or without its leading slash),
// refusing any but the canonical encoding.
func ParseTilePath(p string) (TilePath, error) {
	fail := func(why string) (TilePath, error) {
		return TilePath{}, fmt.Errorf("%w: %q: %s", ErrMalformedTilePath, p, why)
	}
	rest, ok := strings.CutPrefix(strings.TrimPrefix(p, "/"), "tile/")
	if !ok {
		return fail("want tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>]")
	}
	level, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return fail("no tile index")
	}
	t := TilePath{Width: TileWidth}
	if level == "entries" {
		t.Level = EntriesLevel
	} else {
		l, ok := canonicalDecimal(level)
		if !ok || l > 63 {
			return fail("level must be a decimal from 0 to 63")
		}
		t.Level = int(l)
	}
	if idx, w, ok := strings.Cut(rest, ".p/"); ok {
		width, ok := canonicalDecimal(w)
		if !ok || width < 1 || width >= TileWidth {
			return fail("partial width must be a decimal from 1 to 255")
		}
		t.Width, rest = int(width), idx
	}
	groups := strings.Split(rest, "/")
	for i, g := range groups {
		if i < len(groups)-1 {
			var ok bool
			if g, ok = strings.CutPrefix(g, "x"); !ok {
				return fail("every index group but the last starts with x")
			}
		}
		if len(g) != 3 || g[0] < '0' || g[0] > '9' || g[1] < '0' || g[1] > '9' || g[2] < '0' || g[2] > '9' {
			return fail("index groups are three digits")
		}
		d := uint64(g[0]-'0')*100 + uint64(g[1]-'0')*10 + uint64(g[2]-'0')
		if i == 0 && d == 0 && len(groups) > 1 {
			return fail("index has a leading zero group")
		}
		if t.Index > (1<<64-1-d)/1000 {
			return fail("index beyond 2^64")
		}
		t.Index = t.Index*1000 + d
	}
	return t, nil
}

// canonicalDecimal parses a decimal with no sign and no leading zeros.
func canonicalDecimal(s string) (uint64, bool) {
	if s == "" || (len(s) > 1 && s[0] == '0') || s[0] < '0' || s[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}
