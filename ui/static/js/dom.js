// DOM helpers: build elements without innerHTML (everything shown from
// the log is text), times as <time>, messages with roles.
import { isoUTC, localTime, describeError } from './format.js';

// h builds an element: h('a', {href: '#/x', class: 'c'}, 'text', child).
// Attributes: class, dataset {}, on<event> functions, value/checked as
// properties, true for boolean attributes; null/false are skipped.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') {
      for (const [dk, dv] of Object.entries(v)) if (dv != null) el.dataset[dk] = dv;
    }
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' || k === 'checked') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  add(el, children);
  return el;
}

function add(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

// put replaces an element's children.
export function put(el, ...children) {
  el.replaceChildren();
  add(el, children);
  return el;
}

// timeEl shows a Unix ms time in the viewer's zone; the UTC time is the
// title and the datetime.
export function timeEl(ms) {
  if (ms == null || !Number.isFinite(ms)) return h('span', { class: 'muted' }, '—');
  const iso = isoUTC(ms);
  return h('time', { datetime: iso, title: iso.replace('T', ' ').replace('Z', ' UTC') }, localTime(ms));
}

// errorEl is an alert saying what failed and what to do next.
export function errorEl(err, id) {
  return h('p', { class: 'error', role: 'alert', id }, describeError(err));
}

// setState sets a status element's data-state and text (only when it
// changes, so that live regions do not repeat themselves).
export function setState(el, state, ...children) {
  el.dataset.state = state;
  const text = children.flat(Infinity).map((c) => (c instanceof Node ? c.textContent : String(c ?? ''))).join('');
  if (el.textContent !== text) put(el, ...children);
}

export function field(id, label, input, hint) {
  const hintId = hint ? id + '-hint' : null;
  if (hintId) input.setAttribute('aria-describedby', hintId);
  return h('div', { class: 'field' },
    h('label', { for: id }, label), input, hint ? h('p', { class: 'hint', id: hintId }, hint) : null);
}

// download makes a Blob URL link; revoke it with URL.revokeObjectURL.
export function blobURL(parts, type = 'application/octet-stream') {
  return URL.createObjectURL(new Blob(parts, { type }));
}
