package client

import (
	"context"
	"errors"
	"fmt"
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
		var got tlogv1.AuditEvent
		what := fmt.Sprintf("event %d (leaf %d)", i, r.GetResult().GetIndex())
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

// TimelineEvent is a verified event of a subject's timeline.
type TimelineEvent struct {
	Entry
	// Event is the decoded payload.
	Event *tlogv1.AuditEvent
	// Link is the entry's back-link for the subject: the index of the
	// subject's previous event, or tlog.NoLink.
	Link uint64
}

// Timeline is a subject's verified timeline at one checkpoint.
type Timeline struct {
	Tenant, Subject string
	// Checkpoint is the verified checkpoint every event is proven in.
	Checkpoint Checkpoint
	// Events are every event naming the subject in Checkpoint's tree, in
	// log order, each linking back to the one before.
	Events []TimelineEvent
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
		if req.TreeSize == 0 {
			cp, err := c.OpenCheckpoint([]byte(resp.GetCheckpoint()))
			if err != nil {
				return nil, err
			}
			if err := c.accept(ctx, nil, cp, nil); err != nil {
				return nil, err
			}
			tl.Checkpoint, req.TreeSize = cp, cp.Size
		} else if resp.GetCheckpoint() != string(tl.Checkpoint.Note) {
			return nil, verifyErr("timeline page", fmt.Errorf("a later page is against another checkpoint than size %d", tl.Checkpoint.Size))
		}
		for _, te := range resp.GetEvents() {
			ev, err := c.verifyTimelineEvent(tl, te, prev)
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
func (c *Client) verifyTimelineEvent(tl *Timeline, te *tlogv1.TimelineEvent, prev uint64) (TimelineEvent, error) {
	e := te.GetEntry()
	index := e.GetIndex()
	what := fmt.Sprintf("timeline event at entry %d", index)
	if prev != tlog.NoLink && index <= prev {
		return TimelineEvent{}, verifyErr(what, fmt.Errorf("not after the previous event, entry %d", prev))
	}
	parsed, err := tlog.ParseEntry(e.GetEntry())
	if err != nil {
		return TimelineEvent{}, verifyErr(what, err)
	}
	if err := tlog.VerifyRecord(e.GetEntry(), e.GetSalt(), e.GetPayload()); err != nil {
		return TimelineEvent{}, verifyErr(what+" commitment", err)
	}
	leaf := tlog.LeafHash(e.GetEntry())
	p, err := hashes(te.GetInclusionProof())
	if err != nil {
		return TimelineEvent{}, verifyErr(what+" inclusion proof", err)
	}
	if err := tlog.VerifyInclusion(index, tl.Checkpoint.Size, leaf, p, tl.Checkpoint.Root); err != nil {
		return TimelineEvent{}, verifyErr(what+" inclusion proof", err)
	}
	ev := &tlogv1.AuditEvent{}
	if err := proto.Unmarshal(e.GetPayload(), ev); err != nil {
		return TimelineEvent{}, verifyErr(what+" payload", err)
	}
	if te.GetEvent() != nil && !proto.Equal(te.GetEvent(), ev) {
		return TimelineEvent{}, verifyErr(what, errors.New("the decoded event is not the payload"))
	}
	// Which back-links are the subject's: actor's first, target's second.
	var links []uint64
	if ev.GetTenant() == tl.Tenant && len(parsed.Links) == tlog.MaxLinks {
		if ev.GetActor().GetId() == tl.Subject {
			links = append(links, parsed.Links[0])
		}
		if ev.GetTarget().GetId() == tl.Subject {
			links = append(links, parsed.Links[1])
		}
	}
	if len(links) == 0 {
		return TimelineEvent{}, verifyErr(what, fmt.Errorf("the event does not name %q in tenant %q", tl.Subject, tl.Tenant))
	}
	for _, l := range links {
		if l != prev {
			reason := fmt.Sprintf("entry %d links back to entry %d, but the previous event returned is entry %d: an event of %q is missing", index, l, prev, tl.Subject)
			if prev == tlog.NoLink {
				reason = fmt.Sprintf("entry %d links back to entry %d, but no earlier event was returned: an event of %q is missing", index, l, tl.Subject)
			} else if l == tlog.NoLink {
				reason = fmt.Sprintf("entry %d is %q's first event, but entry %d was returned before it", index, tl.Subject, prev)
			}
			return TimelineEvent{}, &ChainError{Index: index, Link: l, Prev: prev, Reason: reason}
		}
	}
	return TimelineEvent{
		Entry: Entry{Index: index, Entry: e.GetEntry(), Time: time.UnixMilli(int64(parsed.Time)), LeafHash: leaf, Salt: e.GetSalt(), Payload: e.GetPayload()},
		Event: ev, Link: links[0],
	}, nil
}
