package client

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/tlog"
)

// RecordEvents records audit events and returns only verified results, as
// Append does; besides, each result's payload must decode to the event sent
// (for a duplicate, to an event with the same tenant and event id: the one
// recorded first), and each entry must be an event entry.
func (c *Client) RecordEvents(ctx context.Context, events ...*tlogv1.AuditEvent) ([]Result, Checkpoint, error) {
	req := &tlogv1.RecordEventsRequest{Events: events, IncludeProofs: true}
	var base *Checkpoint
	if tr, ok := c.Trusted(); ok {
		base, req.ConsistencyFrom = &tr, tr.Size
	}
	resp, err := c.audit.RecordEvents(ctx, req)
	if err != nil {
		return nil, Checkpoint{}, fmt.Errorf("client: record events: %w", err)
	}
	if len(resp.GetResults()) != len(events) {
		return nil, Checkpoint{}, verifyErr("record events response", fmt.Errorf("%d results for %d events", len(resp.GetResults()), len(events)))
	}
	results := make([]*tlogv1.AppendResult, len(events))
	payloads := make([][]byte, len(events))
	for i, r := range resp.GetResults() {
		results[i], payloads[i] = r.GetResult(), r.GetPayload()
		what := fmt.Sprintf("event %d (leaf %d)", i, r.GetResult().GetIndex())
		if r.GetConflict() {
			if !r.GetResult().GetDuplicate() {
				return nil, Checkpoint{}, verifyErr(what, errors.New("a conflict that is not a duplicate"))
			}
			payloads[i] = nil // nothing to check the commitment against
			continue
		}
		var got tlogv1.AuditEvent
		if err := proto.Unmarshal(r.GetPayload(), &got); err != nil {
			return nil, Checkpoint{}, verifyErr(what+" payload", err)
		}
		same := proto.Equal(&got, events[i])
		if r.GetResult().GetDuplicate() {
			same = got.GetTenant() == events[i].GetTenant() && got.GetEventId() == events[i].GetEventId()
		}
		if !same {
			return nil, Checkpoint{}, verifyErr(what+" payload", errors.New("it is not the event sent"))
		}
		if e, err := tlog.ParseEntry(r.GetResult().GetEntry()); err == nil && len(e.Links) != 2 {
			return nil, Checkpoint{}, verifyErr(what+" entry", errors.New("not an event entry with two back-links"))
		}
	}
	return c.verifyAppended(ctx, base, resp.GetCheckpoint(), results, payloads, resp.GetConsistencyProof())
}

// Event is a verified audit event: of a timeline, or a query result.
type Event struct {
	Entry
	// Event is the decoded payload.
	Event *tlogv1.AuditEvent
	// Link, in a timeline, is the entry's back-link for the subject: the
	// index of the subject's previous event, or tlog.NoLink for its first.
	// Query results leave it NoLink.
	Link uint64
}

// Timeline is a subject's verified timeline at one checkpoint.
type Timeline struct {
	Tenant, Subject string
	// Checkpoint is the verified checkpoint every event is proven in.
	Checkpoint Checkpoint
	// Events are every event naming the subject in Checkpoint's tree, in
	// log order, each linking back to the one before.
	Events []Event

	erasures map[uint64]map[uint64]bool // erasure record → entries it lists
}

// ChainError says where a timeline's chain of back-links is broken: an
// event is missing, or the log's claim about the subject's latest event is
// not the last event it returned.
type ChainError struct {
	// Index is the entry whose back-link does not point to the previous
	// event returned (or the last event returned, for a wrong end).
	Index uint64
	// Link is what the entry links back to; Prev the index of the previous
	// event returned (tlog.NoLink for none).
	Link, Prev uint64
	// Reason says what is wrong.
	Reason string
}

func (e *ChainError) Error() string { return "client: timeline chain broken: " + e.Reason }

// Unwrap returns ErrVerification.
func (e *ChainError) Unwrap() error { return ErrVerification }

// Timeline fetches every event naming subject (an actor or target id in
// tenant) in the tree of the log's latest checkpoint, page by page, and
// verifies it: the checkpoint (signature, consistency with the trusted one,
// which it then trusts), each event's inclusion proof and commitment, that
// each payload names the subject, and the chain: each event's back-link for
// the subject is the previous event's index, the first one's is NoLink, and
// the last one is the latest event the log states for the subject. An event
// left out breaks the chain: a *ChainError. progress, if not nil, is called
// with the number of events verified so far.
func (c *Client) Timeline(ctx context.Context, tenant, subject string, progress func(int)) (*Timeline, error) {
	tl := &Timeline{Tenant: tenant, Subject: subject}
	req := &tlogv1.GetTimelineRequest{Tenant: tenant, SubjectId: subject, PageSize: 1000}
	prev := tlog.NoLink
	for {
		resp, err := c.audit.GetTimeline(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("client: get timeline: %w", err)
		}
		if err := c.pageCheckpoint(ctx, "timeline page", resp.GetCheckpoint(), &tl.Checkpoint); err != nil {
			return nil, err
		}
		req.TreeSize = tl.Checkpoint.Size
		for _, te := range resp.GetEvents() {
			ev, err := c.verifyTimelineEvent(ctx, tl, te, prev)
			if err != nil {
				return nil, err
			}
			tl.Events = append(tl.Events, ev)
			prev = ev.Index
		}
		if progress != nil {
			progress(len(tl.Events))
		}
		if resp.GetNextPageToken() == "" {
			return tl, checkEnd(tl, resp, prev)
		}
		if len(resp.GetEvents()) == 0 {
			return nil, verifyErr("timeline page", errors.New("an empty page that is not the last"))
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

// pageCheckpoint checks the checkpoint of one page of a paged answer
// against cp: the first page's (cp still empty) is opened, checked for
// consistency with the trusted one and trusted; every later page must be
// against that same checkpoint.
func (c *Client) pageCheckpoint(ctx context.Context, what, signed string, cp *Checkpoint) error {
	if cp.Note != nil {
		if signed != string(cp.Note) {
			return verifyErr(what, fmt.Errorf("a later page is against another checkpoint than size %d", cp.Size))
		}
		return nil
	}
	got, err := c.OpenCheckpoint([]byte(signed))
	if err != nil {
		return err
	}
	if err := c.accept(ctx, nil, got, nil); err != nil {
		return err
	}
	*cp = got
	return nil
}

// checkErasure checks that the entry at index was erased by a real erasure
// record: an ACTION_SUBJECT_ERASED event in the timeline's tree, proven and
// with its commitment checked, that lists the entry. A server cannot pass
// off hidden events as erased.
func (c *Client) checkErasure(ctx context.Context, tl *Timeline, index, by uint64) error {
	what := fmt.Sprintf("erasure of entry %d", index)
	if by >= tl.Checkpoint.Size || by <= index {
		return verifyErr(what, fmt.Errorf("the erasure record %d is not after it in the tree of size %d", by, tl.Checkpoint.Size))
	}
	listed, ok := tl.erasures[by]
	if !ok {
		for e, err := range c.Entries(ctx, tl.Checkpoint, by, by+1, true) {
			if err != nil {
				return err
			}
			ev := &tlogv1.AuditEvent{}
			if e.Erased || proto.Unmarshal(e.Payload, ev) != nil || ev.GetAction() != tlogv1.Action_ACTION_SUBJECT_ERASED {
				return verifyErr(what, fmt.Errorf("entry %d is not an erasure record", by))
			}
			listed = map[uint64]bool{}
			for _, f := range strings.Split(ev.GetLabels()["erased_entries"], ",") {
				if n, err := strconv.ParseUint(f, 10, 64); err == nil {
					listed[n] = true
				}
			}
		}
		if tl.erasures == nil {
			tl.erasures = map[uint64]map[uint64]bool{}
		}
		tl.erasures[by] = listed
	}
	if !listed[index] {
		return verifyErr(what, fmt.Errorf("the erasure record %d does not list it", by))
	}
	return nil
}

// checkEnd checks that the timeline ends at the subject's latest event.
func checkEnd(tl *Timeline, resp *tlogv1.GetTimelineResponse, last uint64) error {
	switch {
	case !resp.GetHasEvents() && last == tlog.NoLink:
		return nil
	case !resp.GetHasEvents():
		return &ChainError{Index: last, Link: last, Prev: tlog.NoLink, Reason: fmt.Sprintf("the log says %q has no events, yet returned some", tl.Subject)}
	case last == tlog.NoLink:
		return &ChainError{Index: resp.GetLatestIndex(), Link: tlog.NoLink, Prev: tlog.NoLink,
			Reason: fmt.Sprintf("the log says %q's latest event is entry %d, but returned none", tl.Subject, resp.GetLatestIndex())}
	case resp.GetLatestIndex() != last:
		return &ChainError{Index: resp.GetLatestIndex(), Link: last, Prev: last,
			Reason: fmt.Sprintf("the timeline ends at entry %d, but the log says %q's latest event is entry %d", last, tl.Subject, resp.GetLatestIndex())}
	}
	return nil
}

// verifyTimelineEvent checks one event against the timeline's checkpoint
// and its link to prev, the index of the previous event (NoLink: none).
func (c *Client) verifyTimelineEvent(ctx context.Context, tl *Timeline, te *tlogv1.ProvenEvent, prev uint64) (Event, error) {
	e := te.GetEntry()
	index := e.GetIndex()
	what := fmt.Sprintf("timeline event at entry %d", index)
	if prev != tlog.NoLink && index <= prev {
		return Event{}, verifyErr(what, fmt.Errorf("not after the previous event, entry %d", prev))
	}
	out, err := verifyProvenEvent(tl.Checkpoint, te)
	if err != nil {
		return Event{}, err
	}
	ev := out.Event
	parsed, _ := tlog.ParseEntry(e.GetEntry())
	// Which back-links are the subject's: actor's first, target's second.
	// An erased event no longer says; the log's word (subject_roles) is
	// taken, and the chain still has to link up.
	actor, target := ev.GetActor().GetId() == tl.Subject, ev.GetTarget().GetId() == tl.Subject
	if out.Erased {
		if err := c.checkErasure(ctx, tl, index, out.ErasedBy); err != nil {
			return Event{}, err
		}
		actor, target = te.GetSubjectRoles()&1 != 0, te.GetSubjectRoles()&2 != 0
	} else if ev.GetTenant() != tl.Tenant {
		actor, target = false, false
	}
	var links []uint64
	if len(parsed.Links) == tlog.MaxLinks {
		if actor {
			links = append(links, parsed.Links[0])
		}
		if target {
			links = append(links, parsed.Links[1])
		}
	}
	if len(links) == 0 {
		return Event{}, verifyErr(what, fmt.Errorf("the event does not name %q in tenant %q", tl.Subject, tl.Tenant))
	}
	for _, l := range links {
		if l != prev {
			reason := fmt.Sprintf("entry %d links back to entry %d, but the previous event returned is entry %d: an event of %q is missing", index, l, prev, tl.Subject)
			if prev == tlog.NoLink {
				reason = fmt.Sprintf("entry %d links back to entry %d, but no earlier event was returned: an event of %q is missing", index, l, tl.Subject)
			} else if l == tlog.NoLink {
				reason = fmt.Sprintf("entry %d is %q's first event, but entry %d was returned before it", index, tl.Subject, prev)
			}
			return Event{}, &ChainError{Index: index, Link: l, Prev: prev, Reason: reason}
		}
	}
	out.Link = links[0]
	return out, nil
}

// QueryEvents runs a query page by page against one checkpoint (the log's
// latest when the query starts, verified and trusted) and yields every
// matching event, each verified: its inclusion proof, its commitment, that
// the event is its payload, and that it matches the filters the client can
// check itself (ids, tenant, actions, outcome, occurred time; the log-time
// range is the server's). A query cannot prove that nothing was left out:
// for that, use Timeline, whose chain can. The request's tree_size and
// page_token are managed here.
func (c *Client) QueryEvents(ctx context.Context, q *tlogv1.QueryEventsRequest) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		req := proto.Clone(q).(*tlogv1.QueryEventsRequest)
		req.TreeSize, req.PageToken = 0, ""
		var cp Checkpoint
		prev := tlog.NoLink // across pages: results come in log order
		for {
			resp, err := c.audit.QueryEvents(ctx, req)
			if err != nil {
				yield(Event{}, fmt.Errorf("client: query events: %w", err))
				return
			}
			if err := c.pageCheckpoint(ctx, "query page", resp.GetCheckpoint(), &cp); err != nil {
				yield(Event{}, err)
				return
			}
			req.TreeSize = cp.Size
			for _, pe := range resp.GetEvents() {
				ev, err := verifyProvenEvent(cp, pe)
				what := fmt.Sprintf("query result entry %d", ev.Index)
				switch {
				case err != nil:
				case prev != tlog.NoLink && ev.Index <= prev:
					err = verifyErr(what, errors.New("out of log order, or repeated"))
				case !isEvent(ev.Entry.Entry):
					err = verifyErr(what, errors.New("not an audit event entry"))
				case q.GetLoggedFrom() != nil && ev.Time.Before(q.GetLoggedFrom().AsTime().Truncate(time.Millisecond)),
					q.GetLoggedBefore() != nil && !ev.Time.Before(q.GetLoggedBefore().AsTime()):
					err = verifyErr(what, errors.New("logged outside the time range asked for"))
				}
				if err == nil && ev.Erased {
					continue // nothing to show; queries skip erased events
				}
				if err == nil && !matches(q, ev.Event) {
					err = verifyErr(fmt.Sprintf("query result entry %d", ev.Index), errors.New("the event does not match the query"))
				}
				if err != nil {
					yield(Event{}, err)
					return
				}
				prev = ev.Index
				if !yield(ev, nil) {
					return
				}
			}
			if resp.GetNextPageToken() == "" {
				return
			}
			req.PageToken = resp.GetNextPageToken()
		}
	}
}

// isEvent reports whether entry is an audit event's (version 2).
func isEvent(entry []byte) bool {
	e, err := tlog.ParseEntry(entry)
	return err == nil && e.Links != nil
}

// matches checks the filters of q that an event shows by itself.
func matches(q *tlogv1.QueryEventsRequest, ev *tlogv1.AuditEvent) bool {
	actor, target := ev.GetActor().GetId(), ev.GetTarget().GetId()
	scoped := q.GetSubjectId() != "" || q.GetActorId() != "" || q.GetTargetId() != ""
	o := ev.GetOccurredAt().AsTime()
	switch {
	case (q.GetTenant() != "" || scoped) && ev.GetTenant() != q.GetTenant(),
		q.GetSubjectId() != "" && actor != q.GetSubjectId() && target != q.GetSubjectId(),
		q.GetActorId() != "" && actor != q.GetActorId(),
		q.GetTargetId() != "" && target != q.GetTargetId(),
		len(q.GetActions()) > 0 && !slices.Contains(q.GetActions(), ev.GetAction()),
		q.GetOutcome() != tlogv1.Outcome_OUTCOME_UNSPECIFIED && ev.GetOutcome() != q.GetOutcome(),
		q.GetOccurredFrom() != nil && o.Before(q.GetOccurredFrom().AsTime()),
		q.GetOccurredBefore() != nil && !o.Before(q.GetOccurredBefore().AsTime()):
		return false
	}
	return true
}

// verifyProvenEvent checks an event's proof against cp, its commitment,
// and that the event given is its payload.
func verifyProvenEvent(cp Checkpoint, pe *tlogv1.ProvenEvent) (Event, error) {
	e := pe.GetEntry()
	what := fmt.Sprintf("event at entry %d", e.GetIndex())
	parsed, err := tlog.ParseEntry(e.GetEntry())
	if err != nil {
		return Event{}, verifyErr(what, err)
	}
	leaf := tlog.LeafHash(e.GetEntry())
	p, err := hashes(pe.GetInclusionProof())
	if err == nil {
		err = tlog.VerifyInclusion(e.GetIndex(), cp.Size, leaf, p, cp.Root)
	}
	if err != nil {
		return Event{}, verifyErr(what+" inclusion proof", err)
	}
	out := Event{
		Entry: Entry{Index: e.GetIndex(), Entry: e.GetEntry(), Time: time.UnixMilli(int64(parsed.Time)), LeafHash: leaf,
			Salt: e.GetSalt(), Payload: e.GetPayload(), Erased: e.GetErased(), ErasedBy: e.GetErasedBy()},
		Link: tlog.NoLink,
	}
	if e.GetErased() {
		return out, nil // the entry is proven; its payload is gone
	}
	if err := tlog.VerifyRecord(e.GetEntry(), e.GetSalt(), e.GetPayload()); err != nil {
		return Event{}, verifyErr(what+" commitment", err)
	}
	ev := &tlogv1.AuditEvent{}
	if err := proto.Unmarshal(e.GetPayload(), ev); err != nil {
		return Event{}, verifyErr(what+" payload", err)
	}
	if pe.GetEvent() != nil && !proto.Equal(pe.GetEvent(), ev) {
		return Event{}, verifyErr(what, errors.New("the decoded event is not the payload"))
	}
	out.Event = ev
	return out, nil
}

// EraseSubject asks the log to erase a subject's events (an admin call). It
// verifies the checkpoint returned (signature, consistency; then trusts it)
// and that the erasure record's index is inside its tree; the admin
// capability reads nothing, so proving the record itself is for a reader
// (tlogctl prove -index).
func (c *Client) EraseSubject(ctx context.Context, req *tlogv1.EraseSubjectRequest) (*tlogv1.EraseSubjectResponse, Checkpoint, error) {
	resp, err := c.audit.EraseSubject(ctx, req)
	if err != nil {
		return nil, Checkpoint{}, fmt.Errorf("client: erase subject: %w", err)
	}
	cp, err := c.OpenCheckpoint([]byte(resp.GetCheckpoint()))
	if err != nil {
		return nil, Checkpoint{}, err
	}
	if resp.GetErasureIndex() >= cp.Size {
		return nil, Checkpoint{}, verifyErr("erasure record", fmt.Errorf("entry %d is not in the tree of size %d", resp.GetErasureIndex(), cp.Size))
	}
	if err := c.accept(ctx, nil, cp, nil); err != nil {
		return nil, Checkpoint{}, err
	}
	return resp, cp, nil
}
