// DOM helpers: build elements without innerHTML (everything shown from
// the log is text), times as <time>, messages with roles.
import { isoUTC, timeLabels, describeError } from './format.js';

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

// Times show in the viewer's zone, or in UTC when the header's toggle is
// pressed (localStorage 'tlogd.times' = 'utc'); the other is the title.
const TIMES = 'tlogd.times';
let utc = false;
try { utc = localStorage.getItem(TIMES) === 'utc'; } catch { /* local */ }
export const timesUTC = () => utc;

// setTimesUTC switches every time on the page, and later ones.
export function setTimesUTC(on) {
  utc = !!on;
  try { localStorage.setItem(TIMES, utc ? 'utc' : 'local'); } catch { /* this page only */ }
  for (const el of document.querySelectorAll('time[data-ms]')) showTime(el, Number(el.dataset.ms));
}

function showTime(el, ms) {
  const t = timeLabels(ms, utc);
  el.textContent = t.text;
  el.title = t.title;
}

// timeEl shows a Unix ms time (see setTimesUTC); the datetime is UTC.
export function timeEl(ms) {
  if (ms == null || !Number.isFinite(ms)) return h('span', { class: 'muted' }, '—');
  const el = h('time', { datetime: isoUTC(ms), dataset: { ms: String(ms) } });
  showTime(el, ms);
  return el;
}

// setBusy marks a button busy with aria-disabled, not the disabled
// property, which would drop the keyboard focus of a focused button; its
// handlers ignore it while isBusy.
export function setBusy(button, on) {
  if (on) button.setAttribute('aria-disabled', 'true');
  else button.removeAttribute('aria-disabled');
}
export const isBusy = (button) => button.getAttribute('aria-disabled') === 'true';

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
