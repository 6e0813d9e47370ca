package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tlogd/tlogd/client"
	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/tlog"
)

// chromiumPath finds the browser the dashboard tests drive: TLOGD_CHROMIUM,
// or chromium (Debian's package) or Chrome on PATH. The tests fail without
// one: CI installs Debian's chromium. TLOGD_SKIP_BROWSER=1 skips them.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if os.Getenv("TLOGD_SKIP_BROWSER") != "" {
		t.Skip("TLOGD_SKIP_BROWSER is set")
	}
	if p := os.Getenv("TLOGD_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("the dashboard's browser tests need Chromium: install it (Debian: apt-get install chromium), point TLOGD_CHROMIUM at it, or set TLOGD_SKIP_BROWSER=1")
	return ""
}

// page drives one headless Chromium tab, and saves screenshots under
// artifacts/screenshots at the repository's root (kept by CI).
type page struct {
	t    *testing.T
	ctx  context.Context
	base string
	dir  string
}

func openPage(t *testing.T, base string) *page {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 768),
		// The viewer's zone is not UTC: times must show in it, with UTC on
		// hover.
		chromedp.Env("TZ=America/New_York"),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	dir := filepath.Join("..", "artifacts", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &page{t: t, ctx: bctx, base: base, dir: dir}
}

// run runs actions with a deadline; on failure it saves a screenshot and
// the page's text, and fails the test.
func (p *page) run(step string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	get(p, step, chromedp.Steps(actions...))
}

// get runs one action that reads a value, as run does.
func get[T any](p *page, step string, a chromedp.Action[T]) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		sctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		defer cancel()
		text, _ := chromedp.Run(sctx, chromedp.Text(chromedp.CSS("body")))
		shot, _ := chromedp.Run(sctx, chromedp.CaptureScreenshot())
		name := "failed-" + strings.ReplaceAll(p.t.Name(), "/", "-") + ".png"
		os.WriteFile(filepath.Join(p.dir, name), shot, 0o644)
		p.t.Fatalf("%s: %v\npage text:\n%s\n(screenshot: artifacts/screenshots/%s)", step, err, text, name)
	}
	return v
}

// shot saves a screenshot of the viewport.
func (p *page) shot(name string) {
	p.t.Helper()
	buf := get(p, "screenshot "+name, chromedp.CaptureScreenshot())
	if err := os.WriteFile(filepath.Join(p.dir, name+".png"), buf, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// eval evaluates JavaScript, awaiting a promise.
func eval[T any](p *page, js string) T {
	p.t.Helper()
	return get(p, "evaluate "+js, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
}

// count returns the number of elements matching a CSS selector.
func (p *page) count(sel string) int {
	p.t.Helper()
	return eval[int](p, fmt.Sprintf("document.querySelectorAll(%q).length", sel))
}

func (p *page) attr(sel, name string) string {
	p.t.Helper()
	return get(p, "read "+sel+"@"+name, chromedp.AttributeValue(chromedp.CSS(sel), name)).Value
}

func (p *page) text(sel string) string {
	p.t.Helper()
	return get(p, "read "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// signIn signs in with token on the sign-in view.
func (p *page) signIn(token string) {
	p.t.Helper()
	p.run("open the sign-in view",
		chromedp.Navigate(p.base+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
	)
	// A key filled in from the server must be confirmed compared with the
	// published one; a key pinned before needs no confirmation.
	if p.count("#vkey-confirm") > 0 {
		p.run("confirm the key", chromedp.Click(chromedp.CSS("#vkey-confirm")))
	}
	p.run("sign in",
		chromedp.SetValue(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#signout")),
	)
}

// goTo opens a route and waits for sel.
func (p *page) goTo(route, sel string) {
	p.t.Helper()
	p.run("open "+route,
		chromedp.Navigate(p.base+"/ui/"+route),
		chromedp.WaitVisible(chromedp.CSS(sel)),
	)
}

// uiTamper is what the test hook breaks in dashboard responses.
type uiTamper int32

const (
	tamperNothing  uiTamper = iota
	tamperProof             // flip a bit of the first event's inclusion proof
	tamperFork              // a checkpoint of another tree of the same size, signed by the log's key
	tamperDrop              // leave the third event out of a timeline
	tamperWithhold          // a checkpoint of a larger tree, signed by the log's key, and no consistency proofs
)

func TestDashboardInBrowser(t *testing.T) {
	chromiumPath(t)
	skey, _, err := note.GenerateKey(rand.Reader, "example.com/test-log")
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := tlog.ParseSignerKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	var tamper atomic.Int32
	// resign signs the checkpoint of r changed by change.
	resign := func(r *tlogv1.GetCheckpointResponse, change func(*tlog.Checkpoint)) {
		body, _, _ := strings.Cut(r.GetCheckpoint(), "\n\n")
		cp, err := tlog.ParseCheckpoint([]byte(body + "\n"))
		if err != nil {
			t.Errorf("hook: %v", err)
			return
		}
		change(&cp)
		forked, err := tlog.SignCheckpoint(cp, signer)
		if err != nil {
			t.Errorf("hook: %v", err)
			return
		}
		r.Checkpoint = string(forked)
	}
	hook := func(method string, resp proto.Message, err error) error {
		if _, ok := resp.(*tlogv1.GetConsistencyProofResponse); ok && uiTamper(tamper.Load()) == tamperWithhold {
			return status.Error(codes.Unavailable, "the log is busy")
		}
		if err != nil {
			return err
		}
		switch uiTamper(tamper.Load()) {
		case tamperProof:
			if r, ok := resp.(*tlogv1.GetTimelineResponse); ok && len(r.GetEvents()) > 0 && len(r.GetEvents()[0].GetInclusionProof()) > 0 {
				r.GetEvents()[0].GetInclusionProof()[0][0] ^= 1
			}
		case tamperDrop:
			if r, ok := resp.(*tlogv1.GetTimelineResponse); ok && len(r.GetEvents()) > 3 {
				r.Events = append(r.Events[:2], r.Events[3:]...)
			}
		case tamperFork:
			if r, ok := resp.(*tlogv1.GetCheckpointResponse); ok {
				resign(r, func(cp *tlog.Checkpoint) { cp.Root[0] ^= 1 })
			}
		case tamperWithhold:
			if r, ok := resp.(*tlogv1.GetCheckpointResponse); ok {
				resign(r, func(cp *tlog.Checkpoint) { cp.Size++; cp.Root[0] ^= 1 })
			}
		}
		return err
	}
	sl := startSecureLogKey(t, skey, dashboardPolicy, nil, func(s *Server) { s.uiHook = hook })
	seedHistory(t, sl)
	base := serveDashboard(t, sl.srv)
	p := openPage(t, base)

	t.Run("unauthenticated", func(t *testing.T) {
		p.t = t
		p.goTo("", "#token")
		code := eval[int](p, `fetch("/ui/api/rpc/tlog.v1.LogService/GetCheckpoint", {method: "POST", body: "{}", headers: {"Content-Type": "application/json"}}).then(r => r.status)`)
		if code != 401 {
			t.Errorf("API call without a session: %d, want 401", code)
		}
		if n := p.count("#vkey"); n != 1 {
			t.Fatal("no verifier key field on the sign-in view")
		}
		// The key came from the server: signing in needs the box ticked.
		p.run("sign in without confirming the key",
			chromedp.Click(chromedp.CSS("#signin")),
			chromedp.WaitVisible(`//*[@id="login-error"][contains(., 'Compare the key with the one the operator published')]`),
		)
		p.shot("01-sign-in")
		// The server's key put in again, and Enter in the key field, still
		// needs the box ticked; another key is the user's own.
		p.run("enter the server's key again",
			chromedp.Evaluate[chromedp.Void](`document.querySelector("#login-error").textContent = ""`),
			chromedp.SetValue(chromedp.CSS("#vkey"), "\n"+sl.vkey+"\n"),
			chromedp.Focus(chromedp.CSS("#vkey")),
			chromedp.KeyEvent(kb.Enter),
			chromedp.WaitVisible(`//*[@id="login-error"][contains(., 'Compare the key with the one the operator published')]`),
		)
		p.run("type another key",
			chromedp.SendKeys(chromedp.CSS("#vkey"), "x"),
			chromedp.WaitNotVisible(chromedp.CSS("#vkey-confirm")),
		)
	})

	t.Run("wrong role", func(t *testing.T) {
		p.t = t
		p.signIn(sl.tokens["reader-token"])
		p.goTo("#/search", "#q-run")
		p.run("search as a reader",
			chromedp.SetValue(chromedp.CSS("#q-tenant"), "acme"),
			chromedp.Click(chromedp.CSS("#q-run")),
			chromedp.WaitVisible(`//*[contains(., 'lacks capability "read_payloads"')]`),
		)
		p.shot("02-reader-refused")
		p.run("sign out", chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#token")))
	})

	t.Run("overview verified", func(t *testing.T) {
		p.t = t
		p.signIn(sl.tokens["auditor-token"])
		p.goTo("#/overview", `#badge[data-state="verified"]`)
		if got := p.text("#cp-origin"); got != "example.com/test-log" {
			t.Errorf("origin %q", got)
		}
		p.shot("03-overview")
	})

	t.Run("keyboard", func(t *testing.T) {
		p.t = t
		p.goTo("#/overview", `#badge[data-state="verified"]`)
		focused := func() string {
			return eval[string](p, `(e => e.id || e.className || e.textContent.trim())(document.activeElement)`)
		}
		p.run("reload, then tab to the skip link",
			chromedp.Reload(),
			chromedp.WaitVisible(chromedp.CSS(`#badge[data-state="verified"]`)),
			chromedp.KeyEvent(kb.Tab))
		if f := focused(); f != "skip" {
			t.Fatalf("first Tab focuses %q, want the skip link", f)
		}
		p.run("tab to the nav", chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Tab))
		if f := focused(); f != "Search" {
			t.Fatalf("third Tab focuses %q, want the Search link", f)
		}
		p.run("open Search with Enter", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS("#q-run")))
	})

	t.Run("search", func(t *testing.T) {
		p.t = t
		p.goTo("#/search", "#q-run")
		p.run("search failed logins of mallory",
			chromedp.SetValue(chromedp.CSS("#q-tenant"), "acme"),
			chromedp.SetValue(chromedp.CSS("#q-actor"), "mallory"),
			chromedp.Click(chromedp.CSS("#q-run")),
			chromedp.WaitVisible(chromedp.CSS("tr.event")),
			chromedp.WaitNotPresent(chromedp.CSS(`tr.event:not([data-verified])`)),
		)
		if n, ok := p.count(`tr.event[data-verified="yes"]`), p.count("tr.event"); n != 5 || ok != 5 {
			t.Errorf("%d of %d rows verified, want 5 of 5", n, ok)
		}
		p.shot("04-search")
	})

	t.Run("timeline", func(t *testing.T) {
		p.t = t
		p.goTo("#/timeline?tenant=acme&subject=alice", `#chain[data-state="intact"]`)
		if n := p.count(`#timeline .event[data-verified="yes"]`); n != 10 {
			t.Errorf("%d verified events in alice's timeline, want 10", n)
		}
		if txt := p.text("#timeline"); !strings.Contains(txt, "viewer") || !strings.Contains(txt, "admin") || p.count(".change") == 0 {
			t.Errorf("role changes not shown: %q", txt)
		}
		// Entry 0 occurred at 09:00 UTC on 2026-11-20: 04:00 in New York.
		shown := eval[[]string](p, `[...document.querySelectorAll("#timeline .event[data-index='0'] time")].map(e => e.textContent + " | " + e.title)`)
		if !slices.ContainsFunc(shown, func(s string) bool {
			return strings.HasPrefix(s, "2026-11-20 04:00:00 EST | 2026-11-20 09:00:00") && strings.HasSuffix(s, "UTC")
		}) {
			t.Errorf("times of entry 0 %q: want New York time, with UTC in the title", shown)
		}
		p.shot("05-timeline")
		// The header's toggle shows times in UTC, New York time in the title.
		p.run("times in UTC", chromedp.Click(chromedp.CSS("#times")))
		shown = eval[[]string](p, `[...document.querySelectorAll("#timeline .event[data-index='0'] time")].map(e => e.textContent + " | " + e.title)`)
		if !slices.Contains(shown, "2026-11-20 09:00:00 UTC | 2026-11-20 04:00:00 EST") || p.attr("#times", "aria-pressed") != "true" {
			t.Errorf("times of entry 0 in UTC mode %q", shown)
		}
		p.shot("05b-timeline-utc")
		p.run("times local again", chromedp.Click(chromedp.CSS("#times")))
	})

	t.Run("drift", func(t *testing.T) {
		p.t = t
		baseline := `{"tenant": "acme", "subjects": {"alice": {"roles": ["viewer"]}, "bob": {"roles": ["editor"]}, "carol": {}}}`
		p.goTo("#/drift", "#baseline-file")
		p.run("compare with a baseline",
			// Choosing the file runs the comparison.
			chromedp.SetUploadFiles(chromedp.CSS("#baseline-file"), []string{writeTemp(t, "approved.json", []byte(baseline))}),
			chromedp.WaitVisible(chromedp.CSS(`#drift-badge[data-state="verified"]`)),
		)
		// bob's editor role was revoked; carol holds a permission the
		// baseline does not approve; alice's admin role came and went.
		got := eval[[]string](p, `[...document.querySelectorAll("tr.drift-item[data-verified=yes]")].map(r => r.dataset.status + " " + r.cells[0].textContent.trim())`)
		if len(got) != 2 || !strings.HasPrefix(got[0], "REVOKED bob") && !strings.HasPrefix(got[0], "revoked bob") {
			t.Errorf("drift rows %q, want bob's revoked role and carol's unapproved permission", got)
		}
		p.shot("06-drift")
	})

	t.Run("erasures", func(t *testing.T) {
		p.t = t
		p.goTo("#/erasures", "#erasures")
		p.run("wait for the erasure", chromedp.WaitVisible(`//*[@id="erasures"][contains(., 'GDPR art. 17 request #42')]`))
		p.shot("06-erasures")
		// Every control has a label a screen reader can read.
		for _, route := range []string{"#/search", "#/timeline", "#/drift", "#/verify", "#/export", "#/overview"} {
			p.goTo(route, "main h1")
			unlabelled := eval[[]string](p, `[...document.querySelectorAll("input, select, textarea, button")].filter(e => !(e.labels && e.labels.length) && !e.getAttribute("aria-label") && !e.textContent.trim()).map(e => e.outerHTML)`)
			if len(unlabelled) > 0 {
				t.Errorf("%s: controls without a label: %q", route, unlabelled)
			}
		}
	})

	t.Run("export and prove", func(t *testing.T) {
		p.t = t
		p.goTo("#/export", "#export-run")
		p.run("export with payloads",
			chromedp.Click(chromedp.CSS("#export-payloads")),
			chromedp.Click(chromedp.CSS("#export-run")),
			chromedp.WaitVisible(chromedp.CSS("#export-download")),
		)
		file := eval[string](p, `fetch(document.querySelector("#export-download").href).then(r => r.text())`)
		sum, err := client.VerifyExport(strings.NewReader(file), sl.vkey, nil)
		if err != nil {
			t.Fatalf("the browser's export does not verify with tlogctl's code: %v", err)
		}
		if sum.Header.From != 0 || !sum.Header.Payloads || sum.Erased != 2 {
			t.Errorf("export summary %+v", sum)
		}
		p.run("prove entry 4",
			chromedp.SetValue(chromedp.CSS("#prove-index"), "4"),
			chromedp.Click(chromedp.CSS("#prove-run")),
			chromedp.WaitVisible(chromedp.CSS("#prove-download")),
		)
		bundle := eval[string](p, `fetch(document.querySelector("#prove-download").href).then(r => r.text())`)
		payload := eval[string](p, `fetch(document.querySelector("#prove-payload-download").href).then(r => r.arrayBuffer()).then(b => btoa(String.fromCharCode(...new Uint8Array(b))))`)
		pr, err := tlog.ParseProof([]byte(bundle))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := base64.StdEncoding.DecodeString(payload)
		entry, salt, err := tlog.ParseRecordExtra(pr.Extra)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pr.Verify(tlog.LeafHash(entry), sl.verifier); err != nil || pr.Index != 4 {
			t.Errorf("the browser's proof bundle: index %d: %v", pr.Index, err)
		}
		if err := tlog.VerifyRecord(entry, salt, raw); err != nil {
			t.Errorf("the browser's payload file: %v", err)
		}
		p.shot("07-export")
	})

	t.Run("verify a dropped bundle", func(t *testing.T) {
		p.t = t
		// Prove a record with the Go client's code path (tlog.Proof), and
		// hand it to the page as a dropped file would be.
		entries, err := tlogv1.NewLogServiceClient(sl.conn).GetEntries(sl.callCtx(t, "auditor-token"), &tlogv1.GetEntriesRequest{Start: 6, Count: 1, IncludePayloads: true})
		if err != nil {
			t.Fatal(err)
		}
		e := entries.GetEntries()[0]
		ip, err := sl.client.GetInclusionProof(sl.callCtx(t, "auditor-token"), &tlogv1.GetInclusionProofRequest{Leaf: &tlogv1.GetInclusionProofRequest_Index{Index: 6}})
		if err != nil {
			t.Fatal(err)
		}
		var hashes []tlog.Hash
		for _, h := range ip.GetHashes() {
			hashes = append(hashes, tlog.Hash(h))
		}
		good := tlog.Proof{Extra: tlog.RecordExtra(e.GetEntry(), e.GetSalt()), Index: 6, Hashes: hashes, Checkpoint: []byte(ip.GetCheckpoint())}.Marshal()
		bad := bytes.Replace(good, []byte("index 6\n"), []byte("index 7\n"), 1)
		for _, tc := range []struct {
			name, state string
			file        []byte
		}{{"good", "verified", good}, {"bad", "failed", bad}} {
			p.goTo("#/verify", "#verify-file")
			p.run("drop the "+tc.name+" bundle",
				chromedp.SetUploadFiles(chromedp.CSS("#verify-file"), []string{writeTemp(t, "record-6.tlog-proof", tc.file)}),
				chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#verify-result[data-state=%q]`, tc.state))),
			)
			p.shot("08-verify-" + tc.name)
		}
	})

	t.Run("wrong proof fails visibly", func(t *testing.T) {
		p.t = t
		tamper.Store(int32(tamperProof))
		defer tamper.Store(int32(tamperNothing))
		p.goTo("#/timeline?tenant=acme&subject=bob", `#timeline .event[data-verified="no"]`)
		if n := p.count(`#timeline .event[data-verified="no"]`); n != 1 {
			t.Errorf("%d events flagged, want the one with the wrong proof", n)
		}
		p.shot("09-wrong-proof")
	})

	t.Run("broken chain fails visibly", func(t *testing.T) {
		p.t = t
		tamper.Store(int32(tamperDrop))
		defer tamper.Store(int32(tamperNothing))
		p.goTo("#/timeline?tenant=acme&subject=alice", `#chain[data-state="broken"]`)
		if txt := p.text("#chain"); !strings.Contains(txt, "Chain broken at entry 9: entry 9 links back to entry 7, but the previous event returned is entry 4") {
			t.Errorf("chain message %q does not say where the chain breaks", txt)
		}
		p.shot("10-broken-chain")
	})

	t.Run("forked checkpoint fails visibly", func(t *testing.T) {
		p.t = t
		tamper.Store(int32(tamperFork))
		defer tamper.Store(int32(tamperNothing))
		p.goTo("#/overview", `#badge[data-state="failed"]`)
		if got := p.attr("#trust", "data-state"); got != "failed" {
			t.Errorf("header trust badge %q, want failed", got)
		}
		p.shot("11-forked-checkpoint")
		// The alarm outlives the fork's answers, and a reload, until cleared.
		tamper.Store(int32(tamperNothing))
		p.run("reload after the fork",
			chromedp.Reload(),
			chromedp.WaitVisible(chromedp.CSS(`#alarm-clear`)),
			chromedp.WaitVisible(chromedp.CSS(`#cp-checked time`)),
		)
		if got, trust := p.attr("#badge", "data-state"), p.attr("#trust", "data-state"); got != "failed" || trust != "failed" {
			t.Errorf("after the fork, with honest answers: overview badge %q, header %q, want failed", got, trust)
		}
		if n := p.count("#alarm-trusted, #alarm-shown"); n != 2 {
			t.Errorf("%d checkpoint texts in the evidence, want 2", n)
		}
		if evidence, n := p.signedNotes("#alarm-download"); n != 2 {
			t.Errorf("the evidence file lacks a signed checkpoint:\n%s", evidence)
		}
		p.shot("12-alarm-kept")
		p.clearAlarm()
	})

	t.Run("withheld proofs fail visibly", func(t *testing.T) {
		p.t = t
		// A log that signs a larger tree and then fails every consistency
		// proof is not verified, and its checkpoint is kept as unproven.
		tamper.Store(int32(tamperWithhold))
		defer tamper.Store(int32(tamperNothing))
		p.goTo("#/overview", `#badge[data-state="unverified"]`)
		if got := p.attr("#trust", "data-state"); got != "unverified" {
			t.Errorf("header trust badge %q, want unverified", got)
		}
		if n := p.count("#unproven-list li"); n != 1 {
			t.Errorf("%d unproven checkpoints shown, want 1", n)
		}
		if kept, n := p.signedNotes("#unproven-download"); n != 2 {
			t.Errorf("the unproven checkpoints' file lacks a signed checkpoint:\n%s", kept)
		}
		p.shot("13-unproven")
		// Once the log answers again, it must prove the checkpoint it
		// signed: it cannot (the tree is not that large), so the alarm goes
		// off with both checkpoints.
		tamper.Store(int32(tamperNothing))
		p.run("refresh with honest answers",
			chromedp.Click(chromedp.CSS("#refresh")),
			chromedp.WaitVisible(chromedp.CSS(`#alarm-clear`)),
		)
		if got, trust := p.attr("#badge", "data-state"), p.attr("#trust", "data-state"); got != "failed" || trust != "failed" {
			t.Errorf("after the withheld proof: overview badge %q, header %q, want failed", got, trust)
		}
		if n := p.count("#unproven-list li"); n != 0 {
			t.Errorf("%d unproven checkpoints shown after the alarm, want 0", n)
		}
		if n := p.count("#alarm-trusted, #alarm-shown"); n != 2 {
			t.Errorf("%d checkpoint texts in the evidence, want 2", n)
		}
		p.run("scroll to the alarm", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
		p.shot("14-unproven-alarm")
		p.clearAlarm()
	})
}

// signedNotes fetches the file the download link sel offers, and counts
// the log's signature lines in it.
func (p *page) signedNotes(sel string) (string, int) {
	p.t.Helper()
	text := eval[string](p, fmt.Sprintf(`fetch(document.querySelector(%q).href).then(r => r.text())`, sel))
	return text, strings.Count(text, "\n— example.com/test-log ")
}

// clearAlarm clears the overview's alarm, and waits for the honest log to
// be verified again.
func (p *page) clearAlarm() {
	p.t.Helper()
	p.run("clear the alarm",
		chromedp.Evaluate[chromedp.Void](`window.confirm = () => true; document.querySelector("#alarm-clear").click()`),
		chromedp.WaitVisible(chromedp.CSS(`#badge[data-state="verified"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#trust[data-state="verified"]`)),
	)
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
