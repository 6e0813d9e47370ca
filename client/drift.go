package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/tlogd/tlogd/internal/drift"
	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/tlog"
)

// Baseline is the approved state of grants: for each subject (a user,
// service account or group id in Tenant), the roles, permissions and groups
// it may hold.
type Baseline = drift.Baseline

// Grants are what a subject holds or may hold.
type Grants = drift.Grants

// The kinds of grant, as named in an event's changes (attribute).
const (
	KindRole       = drift.KindRole
	KindPermission = drift.KindPermission
	KindGroup      = drift.KindGroup
)

// The statuses of a drift item.
const (
	// DriftUnapproved: the subject holds a grant the baseline does not
	// approve. Event is the grant.
	DriftUnapproved = drift.Unapproved
	// DriftRevoked: the baseline approves a grant the subject held and no
	// longer holds. Event is the revocation (or the account's deletion).
	DriftRevoked = drift.Revoked
	// DriftNeverGranted: the baseline approves a grant no event in the log
	// gave. Event is nil.
	DriftNeverGranted = drift.NeverGranted
)

// DriftItem is one difference between the log's grants and the baseline.
type DriftItem struct {
	Subject, Kind, Name, Status string
	// Event is the verified event behind the item: who did it, when.
	Event *Event
}

// DriftReport is the drift of a log's grants from a baseline.
type DriftReport struct {
	Checkpoint Checkpoint
	Items      []DriftItem
	// Events is how many grant events were replayed; Unreadable how many of
	// them name no role, permission or group in their changes, so could
	// not be replayed. From ServerDrift, both are the server's word.
	Events, Unreadable int
}

// Drift replays every verified grant event of the baseline's tenant (see
// QueryEvents) and compares the grants they leave with the baseline. A
// query proves each event it returns, not that it returned them all: for a
// report that proves completeness too, use DriftComplete.
//
// Convention: a grant event's target is the grantee, and the grant is named
// by a change whose attribute is "role", "permission" or "group": its
// new_value when granted, its old_value when revoked. Only successful events
// count. An account's deletion (ACTION_ACCOUNT_DELETED) takes every grant
// of its target.
func (c *Client) Drift(ctx context.Context, b Baseline) (*DriftReport, error) {
	q := &tlogv1.QueryEventsRequest{Tenant: b.Tenant, Outcome: tlogv1.Outcome_OUTCOME_SUCCESS, Actions: drift.Actions()}
	d := drift.New[*Event]()
	for ev, err := range c.QueryEvents(ctx, q) {
		if err != nil {
			return nil, err
		}
		if drift.Replayed(b.Tenant, ev.Event) { // an empty tenant filter matches every tenant
			d.Replay(ev.Event, &ev)
		}
	}
	cp, _ := c.Trusted()
	return report(cp, d, b), nil
}

// DriftComplete is Drift over every entry of the log's latest checkpoint,
// read with its payload and verified as a range (see Entries), so that no
// grant event can be left out. It reads the whole log: for large logs,
// prefer running it on a schedule, or Drift.
func (c *Client) DriftComplete(ctx context.Context, b Baseline) (*DriftReport, error) {
	cp, err := c.Update(ctx)
	if err != nil {
		return nil, err
	}
	d := drift.New[*Event]()
	if cp.Size > 0 {
		for e, err := range c.Entries(ctx, cp, 0, 0, true) {
			if err != nil {
				return nil, err
			}
			if e.Erased || !isEvent(e.Entry) {
				continue
			}
			ev := &tlogv1.AuditEvent{}
			if proto.Unmarshal(e.Payload, ev) != nil {
				return nil, verifyErr(fmt.Sprintf("entry %d", e.Index), errors.New("an event entry whose payload is no audit event"))
			}
			if drift.Replayed(b.Tenant, ev) {
				d.Replay(ev, &Event{Entry: e, Event: ev, Link: tlog.NoLink})
			}
		}
	}
	return report(cp, d, b), nil
}

func report(cp Checkpoint, d *drift.State[*Event], b Baseline) *DriftReport {
	r := &DriftReport{Checkpoint: cp, Events: d.Events, Unreadable: d.Unreadable}
	for _, it := range d.Compare(b) {
		r.Items = append(r.Items, DriftItem{Subject: it.Subject, Kind: it.Kind, Name: it.Name, Status: it.Status, Event: it.Ref})
	}
	return r
}

var (
	grantKinds  = map[tlogv1.GrantKind]string{tlogv1.GrantKind_GRANT_KIND_ROLE: KindRole, tlogv1.GrantKind_GRANT_KIND_PERMISSION: KindPermission, tlogv1.GrantKind_GRANT_KIND_GROUP: KindGroup}
	driftStatus = map[tlogv1.DriftStatus]string{tlogv1.DriftStatus_DRIFT_STATUS_UNAPPROVED: DriftUnapproved, tlogv1.DriftStatus_DRIFT_STATUS_REVOKED: DriftRevoked, tlogv1.DriftStatus_DRIFT_STATUS_NEVER_GRANTED: DriftNeverGranted}
)

// ServerDrift asks the log for the report (GetDrift), which replays the
// grant events at the server and reads nothing else: fast on a large log.
// It verifies the checkpoint (signature, consistency; then trusts it) and
// every item: its event's inclusion proof and commitment, that the event is
// of the baseline's tenant and by itself causes the item (a grant of that
// name to that subject for an unapproved grant, its revocation or the
// subject's deletion for a revoked one), that the baseline approves what
// the item says it approves, and that items come sorted, each once. A
// server cannot show drift that is not in the log; it can leave items out,
// which only Drift over a verified timeline or DriftComplete can rule out.
func (c *Client) ServerDrift(ctx context.Context, b Baseline) (*DriftReport, error) {
	req := &tlogv1.GetDriftRequest{Tenant: b.Tenant, Baseline: map[string]*tlogv1.Grants{}, PageSize: 1000}
	for subject, g := range b.Subjects {
		req.Baseline[subject] = &tlogv1.Grants{Roles: g.Roles, Permissions: g.Permissions, Groups: g.Groups}
	}
	r := &DriftReport{}
	var last *drift.Key
	for {
		resp, err := c.audit.GetDrift(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("client: get drift: %w", err)
		}
		if req.TreeSize == 0 {
			r.Events, r.Unreadable = int(resp.GetEventsReplayed()), int(resp.GetUnreadableEvents())
		}
		if err := c.pageCheckpoint(ctx, "drift page", resp.GetCheckpoint(), &r.Checkpoint); err != nil {
			return nil, err
		}
		req.TreeSize = r.Checkpoint.Size
		for _, di := range resp.GetItems() {
			it, err := verifyDriftItem(r.Checkpoint, b, di)
			if err != nil {
				return nil, err
			}
			k := drift.Key{Subject: it.Subject, Kind: it.Kind, Name: it.Name}
			if last != nil && cmp.Or(cmp.Compare(k.Subject, last.Subject), cmp.Compare(k.Kind, last.Kind), cmp.Compare(k.Name, last.Name)) <= 0 {
				return nil, verifyErr("drift report", fmt.Errorf("item %s %s %q is out of order or repeated", k.Subject, k.Kind, k.Name))
			}
			last = &k
			r.Items = append(r.Items, it)
		}
		if resp.GetNextPageToken() == "" {
			return r, nil
		}
		if len(resp.GetItems()) == 0 {
			return nil, verifyErr("drift page", errors.New("an empty page that is not the last"))
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

// verifyDriftItem checks one item of a GetDrift report against cp and b.
func verifyDriftItem(cp Checkpoint, b Baseline, di *tlogv1.DriftItem) (DriftItem, error) {
	it := DriftItem{Subject: di.GetSubjectId(), Kind: grantKinds[di.GetKind()], Name: di.GetName(), Status: driftStatus[di.GetStatus()]}
	k := drift.Key{Subject: it.Subject, Kind: it.Kind, Name: it.Name}
	what := fmt.Sprintf("drift item %s %s %q", k.Subject, k.Kind, k.Name)
	switch {
	case it.Kind == "" || it.Status == "":
		return it, verifyErr(what, fmt.Errorf("unknown kind %v or status %v", di.GetKind(), di.GetStatus()))
	case b.Approved(k) == (it.Status == DriftUnapproved):
		return it, verifyErr(what, fmt.Errorf("%s, but the baseline approves it: %v", it.Status, b.Approved(k)))
	case (it.Status == DriftNeverGranted) != (di.GetEvent() == nil):
		return it, verifyErr(what, fmt.Errorf("%s with an event: %v", it.Status, di.GetEvent() != nil))
	case di.GetEvent() == nil:
		return it, nil
	}
	ev, err := verifyProvenEvent(cp, di.GetEvent())
	switch {
	case err != nil:
		return it, err
	case ev.Erased || !isEvent(ev.Entry.Entry):
		return it, verifyErr(what, fmt.Errorf("entry %d is not a readable audit event", ev.Index))
	case !drift.Replayed(b.Tenant, ev.Event) || !drift.Justifies(ev.Event, k, it.Status):
		return it, verifyErr(what, fmt.Errorf("entry %d (%s of %q in tenant %q) does not make it %s", ev.Index,
			ev.Event.GetAction(), ev.Event.GetTarget().GetId(), ev.Event.GetTenant(), it.Status))
	}
	it.Event = &ev
	return it, nil
}
