// event.js decodes tlogd's audit events (tlog.v1.AuditEvent of
// proto/tlog/v1/audit.proto) from the protobuf wire format, as Go's
// proto.Unmarshal reads them: unknown fields and known fields of another
// wire type are skipped, a non-repeated message met twice is merged, the
// last of a repeated scalar wins, strings must be UTF-8. The dashboard
// decodes every payload itself instead of trusting the server's decoding.
// ui/testdata/events.json, generated and checked by the Go tests, holds
// the known answers.

/** ACTIONS are the names of tlog.v1.Action, by number. */
export const ACTIONS = [
  'ACTION_UNSPECIFIED', 'ACTION_ACCOUNT_CREATED', 'ACTION_ACCOUNT_DELETED', 'ACTION_ACCOUNT_UPDATED',
  'ACTION_ACCOUNT_DISABLED', 'ACTION_ACCOUNT_ENABLED', 'ACTION_ROLE_ASSIGNED', 'ACTION_ROLE_REVOKED',
  'ACTION_PERMISSION_GRANTED', 'ACTION_PERMISSION_REVOKED', 'ACTION_GROUP_MEMBER_ADDED',
  'ACTION_GROUP_MEMBER_REMOVED', 'ACTION_PASSWORD_CHANGED', 'ACTION_PASSWORD_RESET', 'ACTION_MFA_ENROLLED',
  'ACTION_MFA_REMOVED', 'ACTION_LOGIN_SUCCEEDED', 'ACTION_LOGIN_FAILED', 'ACTION_ACCESS_DENIED',
  'ACTION_LOG_PAYLOADS_READ', 'ACTION_CUSTOM', 'ACTION_SUBJECT_ERASED',
];

/** OUTCOMES are the names of tlog.v1.Outcome, by number. */
export const OUTCOMES = ['OUTCOME_UNSPECIFIED', 'OUTCOME_SUCCESS', 'OUTCOME_FAILURE', 'OUTCOME_DENIED'];

/** ACTOR_TYPES are the names of tlog.v1.ActorType, by number. */
export const ACTOR_TYPES = ['ACTOR_TYPE_UNSPECIFIED', 'ACTOR_TYPE_USER', 'ACTOR_TYPE_SERVICE', 'ACTOR_TYPE_SYSTEM'];

/** TARGET_TYPES are the names of tlog.v1.TargetType, by number. */
export const TARGET_TYPES = [
  'TARGET_TYPE_UNSPECIFIED', 'TARGET_TYPE_USER', 'TARGET_TYPE_GROUP', 'TARGET_TYPE_ROLE',
  'TARGET_TYPE_SERVICE_ACCOUNT', 'TARGET_TYPE_PERMISSION', 'TARGET_TYPE_TENANT', 'TARGET_TYPE_LOG',
];

// enumName names an enum number; numbers the .proto does not know become
// "<PREFIX>_<n>" (open enums keep them).
function enumName(names, n) {
  return names[n] ?? `${names[0].replace(/UNSPECIFIED$/, '')}${n}`;
}

const VARINT = 0;
const FIXED64 = 1;
const BYTES = 2;
const START_GROUP = 3;
const END_GROUP = 4;
const FIXED32 = 5;
const MAX_FIELD = 2 ** 29 - 1;
const MAX_GROUP_FIELD = 2 ** 31 - 1; // inside unknown groups, Go reads any int32
const MAX_DEPTH = 10000; // Go's default recursion limit

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// Reader reads wire-format fields from buf[pos, end).
class Reader {
  constructor(buf) {
    this.buf = buf;
    this.pos = 0;
  }

  fail(why, at = this.pos) {
    throw new Error(`malformed AuditEvent: ${why} at byte ${at}`);
  }

  // varint returns a uint64 as a BigInt.
  varint(end) {
    const start = this.pos;
    let v = 0n;
    for (let i = 0; ; i++) {
      if (this.pos >= end) this.fail('truncated varint', start);
      const b = this.buf[this.pos++];
      if (i === 9 && b > 1) this.fail('varint overflows 64 bits', start);
      v |= BigInt(b & 0x7f) << BigInt(7 * i);
      if (b < 0x80) return v;
    }
  }

  // bytes returns the contents of a length-delimited field.
  bytes(end) {
    const start = this.pos;
    const n = this.varint(end);
    if (n > BigInt(end - this.pos)) this.fail(`length ${n} runs past the end of the data`, start);
    this.pos += Number(n);
    return this.buf.subarray(this.pos - Number(n), this.pos);
  }

  string(end) {
    const start = this.pos;
    const b = this.bytes(end);
    try {
      return utf8.decode(b);
    } catch {
      return this.fail('string field is not valid UTF-8', start);
    }
  }

  // tag reads a field's tag: its number, up to max, and wire type.
  tag(end, max) {
    const at = this.pos;
    const t = this.varint(end);
    if (t >> 3n < 1n || t >> 3n > BigInt(max)) this.fail(`invalid field number ${t >> 3n}`, at);
    return [Number(t >> 3n), Number(t & 7n)];
  }

  // fields calls onField(number, wireType, end) for each field up to end;
  // onField reads the value and returns true, or returns false to skip it.
  fields(end, onField) {
    while (this.pos < end) {
      const at = this.pos;
      const [num, wire] = this.tag(end, MAX_FIELD);
      if (!onField(num, wire, end)) this.skip(num, wire, end, at);
    }
  }

  // skip skips a field's value, as protowire.ConsumeFieldValue does: a
  // group up to its end, with field numbers up to 2^31-1 inside.
  skip(num, wire, end, at) {
    const groups = []; // the numbers of the groups open, innermost last
    for (;;) {
      switch (wire) {
        case VARINT:
          this.varint(end);
          break;
        case FIXED64:
        case FIXED32: {
          const n = wire === FIXED64 ? 8 : 4;
          if (end - this.pos < n) this.fail(`truncated ${n * 8}-bit field`, at);
          this.pos += n;
          break;
        }
        case BYTES:
          this.bytes(end);
          break;
        case START_GROUP:
          if (groups.length > MAX_DEPTH) this.fail('groups nested too deep', at);
          groups.push(num);
          break;
        case END_GROUP:
          if (groups.pop() !== num) this.fail(`end of group ${num}, which is not open`, at);
          break;
        default:
          this.fail(`invalid wire type ${wire}`, at);
      }
      if (groups.length === 0) return;
      if (this.pos >= end) this.fail(`group ${groups.at(-1)} is not ended`, this.pos);
      at = this.pos;
      [num, wire] = this.tag(end, MAX_GROUP_FIELD);
    }
  }

  // message reads the fields of a length-delimited message with onField.
  message(end, onField) {
    const body = this.bytes(end);
    const after = this.pos;
    this.pos = after - body.length;
    this.fields(after, onField);
    this.pos = after;
  }
}

/**
 * decodeAuditEvent decodes an AuditEvent from protobuf wire format. Every
 * field is present, with its default when unset (actor and target too);
 * snake_case names as in the .proto; enums by name; occurred_at in Unix
 * milliseconds (null when unset) with the Timestamp's nanos field in
 * occurred_at_nanos; labels as an object. Malformed data throws an Error
 * naming the byte offset.
 */
export function decodeAuditEvent(bytes) {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('decodeAuditEvent takes a Uint8Array');
  const r = new Reader(bytes);
  const ev = {
    event_id: '', occurred_at: null, occurred_at_nanos: 0,
    actor: { type: ACTOR_TYPES[0], id: '', display_name: '', source_ip: '', user_agent: '' },
    action: ACTIONS[0], custom_action: '', target: { type: TARGET_TYPES[0], id: '' },
    tenant: '', outcome: OUTCOMES[0], reason: '', changes: [], request_id: '', trace_id: '',
    source_service: '', labels: {},
  };
  const time = { at: -1, seconds: 0n, nanos: 0 };
  const int32 = (end) => Number(BigInt.asIntN(32, r.varint(end)));
  const strings = (obj, names) => (num, wire, end) => {
    if (wire !== BYTES || !names[num]) return false;
    obj[names[num]] = r.string(end);
    return true;
  };
  // party decodes an Actor or a Target: its type, field 1, and strings.
  const party = (obj, types, names) => (num, wire, end) => {
    if (num !== 1 || wire !== VARINT) return strings(obj, names)(num, wire, end);
    obj.type = enumName(types, int32(end));
    return true;
  };
  const eventStrings = strings(ev, {
    1: 'event_id', 5: 'custom_action', 7: 'tenant', 9: 'reason', 11: 'request_id', 12: 'trace_id', 13: 'source_service',
  });
  r.fields(bytes.length, (num, wire, end) => {
    if (wire === VARINT) {
      if (num === 4) ev.action = enumName(ACTIONS, int32(end));
      else if (num === 8) ev.outcome = enumName(OUTCOMES, int32(end));
      else return false;
      return true;
    }
    if (wire !== BYTES) return false;
    switch (num) {
      case 2:
        if (time.at < 0) time.at = r.pos;
        r.message(end, (n, w, e) => {
          if (w !== VARINT || (n !== 1 && n !== 2)) return false;
          if (n === 1) time.seconds = BigInt.asIntN(64, r.varint(e));
          else time.nanos = int32(e);
          return true;
        });
        return true;
      case 3:
        r.message(end, party(ev.actor, ACTOR_TYPES, { 2: 'id', 3: 'display_name', 4: 'source_ip', 5: 'user_agent' }));
        return true;
      case 6:
        r.message(end, party(ev.target, TARGET_TYPES, { 2: 'id' }));
        return true;
      case 10: {
        const change = { attribute: '', old_value: '', new_value: '' };
        r.message(end, strings(change, { 1: 'attribute', 2: 'old_value', 3: 'new_value' }));
        ev.changes.push(change);
        return true;
      }
      case 14: {
        const entry = { key: '', value: '' };
        r.message(end, strings(entry, { 1: 'key', 2: 'value' }));
        // An own property even for "__proto__".
        Object.defineProperty(ev.labels, entry.key, { value: entry.value, enumerable: true, writable: true, configurable: true });
        return true;
      }
      default:
        return eventStrings(num, wire, end);
    }
  });
  if (time.at >= 0) {
    const ms = time.seconds * 1000n + BigInt(Math.floor(time.nanos / 1e6));
    if (ms > BigInt(Number.MAX_SAFE_INTEGER) || ms < BigInt(Number.MIN_SAFE_INTEGER)) {
      r.fail(`occurred_at of ${time.seconds} seconds is out of range`, time.at);
    }
    ev.occurred_at = Number(ms);
    ev.occurred_at_nanos = time.nanos;
  }
  return ev;
}
