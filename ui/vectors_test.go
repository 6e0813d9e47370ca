package ui_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tlogd/tlogd/internal/testutil"
	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
)

var update = flag.Bool("update", false, "rewrite testdata/events.json from the Go code")

const eventsFile = "testdata/events.json"

// TestEventVectors regenerates testdata/events.json, the known answers
// that static/js/event.js is tested against (test/event.test.mjs), and
// fails if the committed file differs: go test ./ui -run TestEventVectors
// -update rewrites it. Each payload is decoded here with proto.Unmarshal:
// the accepted ones give the events written down, the others fail.
func TestEventVectors(t *testing.T) {
	v := eventVectors{
		Comment: "Known answers for ui/static/js/event.js, written by ui/vectors_test.go (go test ./ui -run TestEventVectors -update). " +
			"Payloads are hex. Each event's payload decodes (as proto.Unmarshal reads it) to want, in decodeAuditEvent's shape; " +
			"each malformed payload must be rejected. enums lists the names of proto/tlog/v1/audit.proto's enums by number.",
		Enums: map[string][]string{
			"actions":      enumNames(t, tlogv1.Action_name),
			"outcomes":     enumNames(t, tlogv1.Outcome_name),
			"actor_types":  enumNames(t, tlogv1.ActorType_name),
			"target_types": enumNames(t, tlogv1.TargetType_name),
		},
	}
	for _, c := range marshalledEvents() {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c.ev)
		if err != nil {
			t.Fatal(err)
		}
		v.Events = append(v.Events, decoded(t, c.name, b))
	}
	for _, c := range wireEvents() {
		v.Events = append(v.Events, decoded(t, c.name, c.b))
	}
	for _, c := range malformedEvents() {
		if err := proto.Unmarshal(c.b, &tlogv1.AuditEvent{}); err == nil {
			t.Fatalf("malformed event %q: proto.Unmarshal accepts %x", c.name, c.b)
		}
		v.Malformed = append(v.Malformed, eventVector{Name: c.name, Payload: c.b})
	}
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	testutil.Golden(t, eventsFile, got, *update, "go test ./ui -run TestEventVectors -update")
}

type eventVectors struct {
	Comment   string              `json:"comment"`
	Enums     map[string][]string `json:"enums"`
	Events    []eventVector       `json:"events"`
	Malformed []eventVector       `json:"malformed"`
}

type eventVector struct {
	Name    string   `json:"name"`
	Payload hexBytes `json:"payload"`
	Want    *event   `json:"want,omitempty"`
}

// hexBytes is written as lowercase hex.
type hexBytes []byte

func (b hexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(b)), nil }

// event is an AuditEvent in the shape decodeAuditEvent returns.
type event struct {
	EventID         string            `json:"event_id"`
	OccurredAt      *int64            `json:"occurred_at"`
	OccurredAtNanos int32             `json:"occurred_at_nanos"`
	Actor           actor             `json:"actor"`
	Action          string            `json:"action"`
	CustomAction    string            `json:"custom_action"`
	Target          target            `json:"target"`
	Tenant          string            `json:"tenant"`
	Outcome         string            `json:"outcome"`
	Reason          string            `json:"reason"`
	Changes         []change          `json:"changes"`
	RequestID       string            `json:"request_id"`
	TraceID         string            `json:"trace_id"`
	SourceService   string            `json:"source_service"`
	Labels          map[string]string `json:"labels"`
}

type actor struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	SourceIP    string `json:"source_ip"`
	UserAgent   string `json:"user_agent"`
}

type target struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

type change struct {
	Attribute string `json:"attribute"`
	OldValue  string `json:"old_value"`
	NewValue  string `json:"new_value"`
}

// decoded unmarshals b and returns it as a vector with the event it is.
func decoded(t *testing.T, name string, b []byte) eventVector {
	t.Helper()
	var ev tlogv1.AuditEvent
	if err := proto.Unmarshal(b, &ev); err != nil {
		t.Fatalf("event %q: %v", name, err)
	}
	return eventVector{Name: name, Payload: b, Want: shape(&ev)}
}

// shape returns ev as decodeAuditEvent does.
func shape(ev *tlogv1.AuditEvent) *event {
	out := &event{
		EventID: ev.GetEventId(),
		Actor: actor{Type: enumName(tlogv1.ActorType_name, "ACTOR_TYPE", int32(ev.GetActor().GetType())), ID: ev.GetActor().GetId(),
			DisplayName: ev.GetActor().GetDisplayName(), SourceIP: ev.GetActor().GetSourceIp(), UserAgent: ev.GetActor().GetUserAgent()},
		Action:        enumName(tlogv1.Action_name, "ACTION", int32(ev.GetAction())),
		CustomAction:  ev.GetCustomAction(),
		Target:        target{Type: enumName(tlogv1.TargetType_name, "TARGET_TYPE", int32(ev.GetTarget().GetType())), ID: ev.GetTarget().GetId()},
		Tenant:        ev.GetTenant(),
		Outcome:       enumName(tlogv1.Outcome_name, "OUTCOME", int32(ev.GetOutcome())),
		Reason:        ev.GetReason(),
		Changes:       []change{},
		RequestID:     ev.GetRequestId(),
		TraceID:       ev.GetTraceId(),
		SourceService: ev.GetSourceService(),
		Labels:        map[string]string{},
	}
	if ts := ev.GetOccurredAt(); ts != nil {
		ms := ts.AsTime().UnixMilli()
		out.OccurredAt, out.OccurredAtNanos = &ms, ts.GetNanos()
	}
	for _, c := range ev.GetChanges() {
		out.Changes = append(out.Changes, change{c.GetAttribute(), c.GetOldValue(), c.GetNewValue()})
	}
	maps.Copy(out.Labels, ev.GetLabels())
	return out
}

// enumName names an enum value; values the .proto does not know are
// "<PREFIX>_<n>".
func enumName(names map[int32]string, prefix string, n int32) string {
	if name, ok := names[n]; ok {
		return name
	}
	return fmt.Sprintf("%s_%d", prefix, n)
}

// enumNames lists an enum's names by number; the numbers must run from 0
// without gaps.
func enumNames(t *testing.T, names map[int32]string) []string {
	out := make([]string, len(names))
	for n, name := range names {
		if n < 0 || int(n) >= len(out) {
			t.Fatalf("enum value %s = %d leaves a gap", name, n)
		}
		out[n] = name
	}
	return out
}

type namedEvent struct {
	name string
	ev   *tlogv1.AuditEvent
}

func marshalledEvents() []namedEvent {
	full := &tlogv1.AuditEvent{
		EventId:    "evt-0001",
		OccurredAt: &timestamppb.Timestamp{Seconds: 1700000000, Nanos: 123456789},
		Actor: &tlogv1.Actor{Type: tlogv1.ActorType_ACTOR_TYPE_USER, Id: "u-42", DisplayName: "Zoë Ångström 山田太郎 🦊",
			SourceIp: "2001:db8::1", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)"},
		Action: tlogv1.Action_ACTION_ROLE_ASSIGNED,
		Target: &tlogv1.Target{Type: tlogv1.TargetType_TARGET_TYPE_USER, Id: "u-7"},
		Tenant: "acme", Outcome: tlogv1.Outcome_OUTCOME_SUCCESS,
		Reason: "ticket SEC-1234:\nprivileged access, approved ✅",
		Changes: []*tlogv1.Change{
			{Attribute: "role", OldValue: "viewer", NewValue: "admin"},
			{Attribute: "group", NewValue: "ops"},
			{Attribute: "mfa", OldValue: "totp"},
		},
		RequestId: "req-9", TraceId: "4bf92f3577b34da6a3ce929d0e0e4736", SourceService: "idp",
		Labels: map[string]string{"env": "prod", "ticket": "SEC-1234", "__proto__": "a label", "constructor": "another", "ключ": "значение"},
	}
	return []namedEvent{
		{"every field set", full},
		{"no field set", &tlogv1.AuditEvent{}},
		{"an erasure record", &tlogv1.AuditEvent{
			EventId: "erase-1", OccurredAt: &timestamppb.Timestamp{Seconds: 1700000500},
			Actor:  &tlogv1.Actor{Type: tlogv1.ActorType_ACTOR_TYPE_SYSTEM, Id: "tlogd"},
			Action: tlogv1.Action_ACTION_SUBJECT_ERASED, Target: &tlogv1.Target{Type: tlogv1.TargetType_TARGET_TYPE_USER, Id: "u-7"},
			Tenant: "acme", Outcome: tlogv1.Outcome_OUTCOME_SUCCESS, Reason: "GDPR art. 17 request 2023-11",
			Labels: map[string]string{"erased_entries": "3,7,9", "subject_key": strings.Repeat("ab", 32)},
		}},
		{"a read of payloads", &tlogv1.AuditEvent{
			EventId: "read-1", Action: tlogv1.Action_ACTION_LOG_PAYLOADS_READ,
			Actor:  &tlogv1.Actor{Type: tlogv1.ActorType_ACTOR_TYPE_SERVICE, Id: "auditor"},
			Target: &tlogv1.Target{Type: tlogv1.TargetType_TARGET_TYPE_LOG, Id: "log.example/1"}, Outcome: tlogv1.Outcome_OUTCOME_SUCCESS,
		}},
		{"a custom action, denied", &tlogv1.AuditEvent{
			EventId: "c-1", Action: tlogv1.Action_ACTION_CUSTOM, CustomAction: "export.downloaded", Outcome: tlogv1.Outcome_OUTCOME_DENIED,
			Target: &tlogv1.Target{Type: tlogv1.TargetType_TARGET_TYPE_SERVICE_ACCOUNT, Id: "sa-1"},
		}},
		{"enum values the .proto does not know", &tlogv1.AuditEvent{
			Action: 99, Outcome: 7, Actor: &tlogv1.Actor{Type: 42}, Target: &tlogv1.Target{Type: 1000},
		}},
		{"negative enum values", &tlogv1.AuditEvent{Action: -1, Outcome: -2147483648}},
		{"occurred_at at the epoch", &tlogv1.AuditEvent{OccurredAt: &timestamppb.Timestamp{}}},
		{"occurred_at before 1970", &tlogv1.AuditEvent{OccurredAt: &timestamppb.Timestamp{Seconds: -31536000, Nanos: 500000000}}},
		{"occurred_at at the end of year 9999", &tlogv1.AuditEvent{OccurredAt: &timestamppb.Timestamp{Seconds: 253402300799, Nanos: 999999999}}},
		{"occurred_at in year 1", &tlogv1.AuditEvent{OccurredAt: &timestamppb.Timestamp{Seconds: -62135596800}}},
		{"empty strings in a change and a label", &tlogv1.AuditEvent{
			Changes: []*tlogv1.Change{{}, {Attribute: "role"}}, Labels: map[string]string{"": "", "k": ""},
		}},
		{"an empty actor and target", &tlogv1.AuditEvent{Actor: &tlogv1.Actor{}, Target: &tlogv1.Target{}}},
	}
}

type wireEvent struct {
	name string
	b    []byte
}

// Wire-format builders.
func tag(num protowire.Number, typ protowire.Type) []byte { return protowire.AppendTag(nil, num, typ) }

func str(num protowire.Number, s string) []byte {
	return protowire.AppendString(tag(num, protowire.BytesType), s)
}

func msg(num protowire.Number, parts ...[]byte) []byte {
	return protowire.AppendBytes(tag(num, protowire.BytesType), slices.Concat(parts...))
}

func varint(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(tag(num, protowire.VarintType), v)
}

func wireEvents() []wireEvent {
	group := func(num protowire.Number, parts ...[]byte) []byte {
		return slices.Concat(tag(num, protowire.StartGroupType), slices.Concat(parts...), tag(num, protowire.EndGroupType))
	}
	return []wireEvent{
		{"unknown fields of every wire type", slices.Concat(
			str(1, "e"), varint(99, 1<<63), protowire.AppendFixed64(tag(100, protowire.Fixed64Type), 7),
			str(101, "unknown"), protowire.AppendFixed32(tag(102, protowire.Fixed32Type), 9),
			group(103, varint(1, 5), str(2, "in a group")), str(7, "acme"))},
		{"unknown fields inside actor, a change and occurred_at", slices.Concat(
			msg(3, str(2, "alice"), varint(77, 1), str(3, "Alice")),
			msg(10, str(1, "role"), group(9), str(3, "admin")),
			msg(2, varint(1, 1700000000), protowire.AppendFixed32(tag(3, protowire.Fixed32Type), 0)))},
		{"known fields of another wire type are skipped", slices.Concat(
			varint(1, 5), str(4, "ACTION_ROLE_ASSIGNED"), varint(3, 1), varint(10, 2), varint(14, 3), str(7, "acme"),
			msg(6, str(1, "type as bytes"), varint(2, 9)))},
		{"a string field twice: the last wins", slices.Concat(str(1, "first"), str(1, "second"), varint(4, 6), varint(4, 7))},
		{"actor twice: merged", slices.Concat(msg(3, str(2, "alice"), varint(1, 1)), msg(3, str(3, "Alice A.")), msg(3, str(2, "alice2")))},
		{"occurred_at twice: merged", slices.Concat(msg(2, varint(1, 5)), msg(2, varint(2, 7)))},
		{"changes, in order", slices.Concat(msg(10, str(1, "a")), str(7, "t"), msg(10, str(1, "b")), msg(10))},
		{"label entries: a key twice, no key, no value, unknown fields", slices.Concat(
			msg(14, str(1, "k"), str(2, "first")), msg(14, str(1, "k"), str(2, "second")),
			msg(14, str(2, "no key")), msg(14, str(1, "no value")), msg(14, str(2, "v2"), varint(3, 1), str(1, "x"), str(2, "v3")),
			msg(14, varint(1, 1), str(1, "y"), str(2, "y value")))},
		{"varints not minimally encoded", slices.Concat(
			[]byte{0x8a, 0x80, 0x00, 0x82, 0x00}, []byte("ab"), // event_id: tag and length padded
			[]byte{0x20, 0x86, 0x80, 0x80, 0x80, 0x00})}, // action 6
		{"enum values in 64-bit varints", slices.Concat(varint(4, 1<<32|6), varint(8, 1<<63|1))},
		{"negative nanos", msg(2, varint(1, 1700000000), varint(2, uint64(1<<64-1)))},
		{"the largest field number", slices.Concat(varint(1<<29-1, 1), str(1, "e"))},
		{"large field numbers inside a group", group(99, varint(1<<31-1, 1), varint(1<<29, 2))},
		{"an empty group, and groups in groups", slices.Concat(group(50), group(51, group(52, group(53, str(1, "deep")))), str(5, "x"))},
		{"an empty string and an empty message", slices.Concat(str(1, ""), msg(3), msg(6))},
		{"a byte order mark kept", str(1, "\ufeffbom")},
	}
}

func malformedEvents() []wireEvent {
	bad := func(s string) []byte { return []byte(s) }
	group := func(num protowire.Number) []byte { return tag(num, protowire.StartGroupType) }
	return []wireEvent{
		{"a truncated tag", []byte{0x8a}},
		{"a truncated varint value", []byte{0x20, 0x80}},
		{"a length beyond the end", []byte{0x0a, 0x05, 'a'}},
		{"a truncated length", []byte{0x0a, 0x80}},
		{"a length of 2^64-1", slices.Concat([]byte{0x0a}, protowire.AppendVarint(nil, 1<<64-1), bad("abc"))},
		{"invalid UTF-8 in event_id", str(1, "\xff")},
		{"invalid UTF-8 in actor.id", msg(3, str(2, "al\xc3ice"))},
		{"invalid UTF-8 in target.id", msg(6, str(2, "\x80"))},
		{"invalid UTF-8 in a change", msg(10, str(2, "\xe2\x82"))},
		{"invalid UTF-8 in a label key", msg(14, str(1, "\xfe"), str(2, "v"))},
		{"invalid UTF-8 in a label value", msg(14, str(1, "k"), str(2, "\xc0\xaf"))},
		{"a UTF-8 encoded surrogate", str(9, "\xed\xa0\x80")},
		{"an overlong encoding", str(11, "\xc0\xaf")},
		{"a code point beyond U+10FFFF", str(12, "\xf4\x90\x80\x80")},
		{"wire type 6", []byte{0x0e, 0x00}},
		{"wire type 7", []byte{0x0f, 0x00}},
		{"field number 0", []byte{0x02, 0x00}},
		{"field number 2^29", varint(1<<29, 1)},
		{"field number 2^29 in a label entry", msg(14, varint(1<<29, 1))},
		{"field number 2^31 inside a group", slices.Concat(group(99), protowire.AppendVarint(nil, 1<<31<<3), []byte{0}, tag(99, protowire.EndGroupType))},
		{"an end of group without a start", tag(5, protowire.EndGroupType)},
		{"an end of group inside actor", msg(3, tag(2, protowire.EndGroupType))},
		{"an end of group in a label entry", msg(14, tag(1, protowire.EndGroupType))},
		{"a group not ended", slices.Concat(group(99), varint(1, 1))},
		{"a group ended as another", slices.Concat(group(99), tag(98, protowire.EndGroupType))},
		{"a varint of 11 bytes", slices.Concat([]byte{0x20}, bytes.Repeat([]byte{0x80}, 10), []byte{0x01})},
		{"a varint beyond 64 bits", slices.Concat([]byte{0x20}, bytes.Repeat([]byte{0xff}, 9), []byte{0x02})},
		{"a truncated fixed32", slices.Concat(tag(99, protowire.Fixed32Type), []byte{1, 2, 3})},
		{"a truncated fixed64", slices.Concat(tag(99, protowire.Fixed64Type), []byte{1, 2, 3, 4, 5, 6, 7})},
		{"actor truncated inside", msg(3, []byte{0x12, 0x05, 'a'})},
		{"occurred_at truncated inside", msg(2, []byte{0x08, 0x80})},
		{"a change truncated inside", msg(10, []byte{0x0a})},
		{"a label entry truncated inside", msg(14, []byte{0x0a, 0x03, 'k'})},
		{"a valid event, then a truncated field", slices.Concat(str(1, "e"), str(7, "acme"), []byte{0x4a, 0x02, 'x'})},
	}
}
