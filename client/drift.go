package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/tlog"
)

// Baseline is the approved state of grants: for each subject (a user,
// service account or group id in Tenant), the roles, permissions and groups
// it may hold.
type Baseline struct {
	Tenant   string            `json:"tenant" yaml:"tenant"`
	Subjects map[string]Grants `json:"subjects" yaml:"subjects"`
}

// Grants are what a subject holds or may hold.
type Grants struct {
	Roles       []string `json:"roles,omitempty" yaml:"roles"`
	Permissions []string `json:"permissions,omitempty" yaml:"permissions"`
	Groups      []string `json:"groups,omitempty" yaml:"groups"`
}

// The kinds of grant, as named in an event's changes (attribute).
const (
	KindRole       = "role"
	KindPermission = "permission"
	KindGroup      = "group"
)

// The statuses of a drift item.
const (
	// DriftUnapproved: the subject holds a grant the baseline does not
	// approve. Event is the grant.
	DriftUnapproved = "unapproved"
	// DriftRevoked: the baseline approves a grant the subject held and no
	// longer holds. Event is the revocation (or the account's deletion).
	DriftRevoked = "revoked"
	// DriftNeverGranted: the baseline approves a grant no event in the log
	// gave. Event is nil.
	DriftNeverGranted = "never-granted"
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
	// not be replayed.
	Events, Unreadable int
}

// grantActions are the events that change grants: +1 gives, -1 takes.
var grantActions = map[tlogv1.Action]struct {
	kind string
	sign int
}{
	tlogv1.Action_ACTION_ROLE_ASSIGNED:        {KindRole, +1},
	tlogv1.Action_ACTION_ROLE_REVOKED:         {KindRole, -1},
	tlogv1.Action_ACTION_PERMISSION_GRANTED:   {KindPermission, +1},
	tlogv1.Action_ACTION_PERMISSION_REVOKED:   {KindPermission, -1},
	tlogv1.Action_ACTION_GROUP_MEMBER_ADDED:   {KindGroup, +1},
	tlogv1.Action_ACTION_GROUP_MEMBER_REMOVED: {KindGroup, -1},
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
	q := &tlogv1.QueryEventsRequest{Tenant: b.Tenant, Outcome: tlogv1.Outcome_OUTCOME_SUCCESS, Actions: []tlogv1.Action{tlogv1.Action_ACTION_ACCOUNT_DELETED}}
	for a := range grantActions {
		q.Actions = append(q.Actions, a)
	}
	d := newDrift()
	r := &DriftReport{}
	for ev, err := range c.QueryEvents(ctx, q) {
		if err != nil {
			return nil, err
		}
		d.replay(r, b, ev)
	}
	r.Checkpoint, _ = c.Trusted()
	r.Items = d.compare(b)
	return r, nil
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
	d := newDrift()
	r := &DriftReport{Checkpoint: cp}
	if cp.Size == 0 {
		r.Items = d.compare(b)
		return r, nil
	}
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
		_, grant := grantActions[ev.GetAction()]
		if ev.GetOutcome() != tlogv1.Outcome_OUTCOME_SUCCESS || (!grant && ev.GetAction() != tlogv1.Action_ACTION_ACCOUNT_DELETED) {
			continue
		}
		d.replay(r, b, Event{Entry: e, Event: ev, Link: tlog.NoLink})
	}
	r.Items = d.compare(b)
	return r, nil
}

// replay applies one verified grant event of any tenant to the report.
func (d *drift) replay(r *DriftReport, b Baseline, ev Event) {
	if ev.Event.GetTenant() != b.Tenant {
		return // an empty tenant filter matches every tenant
	}
	r.Events++
	if !d.apply(ev) {
		r.Unreadable++
	}
}

type grantKey struct{ subject, kind, name string }

// drift is the replayed state of grants.
type drift struct {
	held    map[grantKey]*Event // the grant
	revoked map[grantKey]*Event // the latest revocation of a grant not held
}

func newDrift() *drift {
	return &drift{held: map[grantKey]*Event{}, revoked: map[grantKey]*Event{}}
}

// apply replays one event; false if it names no grant.
func (d *drift) apply(ev Event) bool {
	e := ev.Event
	subject := e.GetTarget().GetId()
	if e.GetAction() == tlogv1.Action_ACTION_ACCOUNT_DELETED {
		for k := range d.held {
			if k.subject == subject {
				delete(d.held, k)
				d.revoked[k] = &ev
			}
		}
		return true
	}
	ga := grantActions[e.GetAction()]
	name := ""
	for _, ch := range e.GetChanges() {
		if ch.GetAttribute() != ga.kind {
			continue
		}
		name = ch.GetNewValue()
		if ga.sign < 0 || name == "" {
			name = cmpOr(ch.GetOldValue(), ch.GetNewValue())
		}
	}
	if name == "" {
		return false
	}
	k := grantKey{subject, ga.kind, name}
	if ga.sign > 0 {
		d.held[k] = &ev
		delete(d.revoked, k)
	} else if _, ok := d.held[k]; ok {
		delete(d.held, k)
		d.revoked[k] = &ev
	}
	return true
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// compare lists the differences from the baseline, sorted by subject, kind
// and name.
func (d *drift) compare(b Baseline) []DriftItem {
	approved := map[grantKey]bool{}
	for subject, g := range b.Subjects {
		for kind, names := range map[string][]string{KindRole: g.Roles, KindPermission: g.Permissions, KindGroup: g.Groups} {
			for _, n := range names {
				approved[grantKey{subject, kind, n}] = true
			}
		}
	}
	var out []DriftItem
	for k, ev := range d.held {
		if !approved[k] {
			out = append(out, DriftItem{Subject: k.subject, Kind: k.kind, Name: k.name, Status: DriftUnapproved, Event: ev})
		}
	}
	for k := range approved {
		if _, ok := d.held[k]; ok {
			continue
		}
		if ev, ok := d.revoked[k]; ok {
			out = append(out, DriftItem{Subject: k.subject, Kind: k.kind, Name: k.name, Status: DriftRevoked, Event: ev})
		} else {
			out = append(out, DriftItem{Subject: k.subject, Kind: k.kind, Name: k.name, Status: DriftNeverGranted})
		}
	}
	slices.SortFunc(out, func(a, b DriftItem) int {
		return strings.Compare(fmt.Sprint(a.Subject, "\x00", a.Kind, "\x00", a.Name), fmt.Sprint(b.Subject, "\x00", b.Kind, "\x00", b.Name))
	})
	return out
}
