// The dashboard's shell: sign-in, the header (who, sign-out, trust badge)
// and the hash routes, one module per page.
import { getInfo, getSession, signOut, onSessionEnded, setCsrf } from './api.js';
import { pinnedKey, onTrust, checkLatest, loadStored } from './trust.js';
import { h, put, timesUTC, setTimesUTC } from './dom.js';
import { describeError } from './format.js';
import { renderSignin } from './pages/signin.js';
import overview from './pages/overview.js';
import search from './pages/search.js';
import timeline from './pages/timeline.js';
import drift from './pages/drift.js';
import erasures from './pages/erasures.js';
import verify from './pages/verify.js';
import exportPage from './pages/export.js';

const routes = { overview, search, timeline, drift, erasures, verify, export: exportPage };
const $ = (sel) => document.querySelector(sel);

let session = null;
let info = null;
let current = null; // {controller, cleanup}
let expiry = 0;
let firstRoute = true;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const q = raw.indexOf('?');
  return { name: (q < 0 ? raw : raw.slice(0, q)) || 'overview', params: new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)) };
}

function leave() {
  if (!current) return;
  current.controller.abort();
  try { if (typeof current.cleanup === 'function') current.cleanup(); } catch { /* gone anyway */ }
  current = null;
}

function route() {
  if (!session) return;
  leave();
  const { name, params } = parseHash();
  const page = routes[name];
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('href') === '#/' + name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const view = $('#view');
  const controller = new AbortController();
  current = { controller, cleanup: null };
  if (!page) {
    document.title = 'Not found · tlogd auditor';
    put(view, h('h1', { tabindex: '-1' }, 'Page not found'),
      h('p', null, 'There is no page at this address. Choose a page in the navigation above, or go to the ', h('a', { href: '#/overview' }, 'overview'), '.'));
  } else {
    document.title = `${page.title} · tlogd auditor`;
    view.replaceChildren();
    current.cleanup = page.render(view, params, { signal: controller.signal, session, info });
  }
  if (!firstRoute) view.querySelector('h1')?.focus();
  firstRoute = false;
}

function setSignedIn(on) {
  for (const el of document.querySelectorAll('.signed-in')) el.hidden = !on;
}

async function showSignin(notice, existing = null) {
  session = null;
  leave();
  clearTimeout(expiry);
  setSignedIn(false);
  document.title = 'Sign in · tlogd auditor';
  let infoError = null;
  try { info = await getInfo(); } catch (e) { info = null; infoError = e; }
  renderSignin($('#view'), { info, infoError, session: existing, notice }, (s) => {
    firstRoute = false; // from the form: move focus to the page's heading
    enter(s);
  });
}

function enter(s) {
  session = s;
  setSignedIn(true);
  const who = s.roles && s.roles.length ? `roles: ${s.roles.join(', ')}` : `can: ${(s.capabilities || []).join(', ') || 'nothing'}`;
  put($('#whoami'), h('span', { class: 'principal' }, s.principal || 'unknown'), ` (${s.via === 'open' ? 'open log' : who})`);
  $('#whoami').title = `Signed in ${s.via === 'token' ? 'with a token' : s.via === 'mtls' ? 'with a client certificate' : s.via}; capabilities: ${(s.capabilities || []).join(', ')}`;
  clearTimeout(expiry);
  const left = Date.parse(s.expires_at) - Date.now();
  if (Number.isFinite(left)) expiry = setTimeout(() => showSignin('Your session expired: sign in again.'), Math.min(Math.max(left, 0), 2 ** 31 - 1));
  if (!location.hash || location.hash === '#') history.replaceState(null, '', '#/overview');
  loadStored();
  route();
  if (parseHash().name !== 'overview') checkLatest().catch(() => {});
}

function trustBadge(s) {
  const el = $('#trust');
  el.dataset.state = s.state;
  // The text changes only with the state, so the live region speaks only then.
  const text = s.state === 'verified' ? '✓ Verified in this browser'
    : s.state === 'failed' ? (s.alarm ? '✗ ALARM: checkpoint check FAILED' : '✗ Checkpoint check FAILED')
      : s.state === 'unverified' ? '⚠ Not verified: the log did not prove its checkpoint' : 'Checking the checkpoint…';
  if (el.textContent !== text) el.textContent = text;
  el.title = s.state === 'failed' ? `${s.error.message} (${s.alarm ? 'evidence' : 'details'} on the overview)`
    : s.state === 'unverified' ? `${s.error.message} (details on the overview)`
      : s.state === 'verified' ? `Tree size ${s.cp.size}, signed with the pinned key and consistent with what this browser saw before` : '';
}

async function start() {
  onTrust(trustBadge);
  onSessionEnded((msg) => { if (session) showSignin(msg); });
  $('#signout').addEventListener('click', async () => {
    try { await signOut(); } catch { /* signed out locally anyway */ }
    setCsrf('');
    showSignin('You signed out.');
  });
  $('.skip').addEventListener('click', (e) => { e.preventDefault(); $('#main').focus(); });
  window.addEventListener('hashchange', route);
  // An alarm, or checkpoints not proven, stored or cleared in another tab.
  window.addEventListener('storage', (e) => {
    if (session && (e.key === null || e.key.startsWith('tlogd.alarm.') || e.key.startsWith('tlogd.unproven.'))) loadStored();
  });
  const times = $('#times');
  times.setAttribute('aria-pressed', String(timesUTC()));
  times.addEventListener('click', () => {
    setTimesUTC(!timesUTC());
    times.setAttribute('aria-pressed', String(timesUTC()));
  });

  if (!window.isSecureContext || !globalThis.crypto?.subtle) {
    // Browsers give WebCrypto (and Web Locks) to secure contexts only.
    setSignedIn(false);
    put($('#view'), h('h1', { tabindex: '-1' }, 'Open this page over HTTPS'),
      h('p', { class: 'error', role: 'alert' }, `This browser does not let a page at ${location.origin} check signatures: it does so only over HTTPS, or on localhost and 127.0.0.1. `,
        'Ask the operator for the dashboard’s https:// address, or reach tlogd through an SSH tunnel to a localhost port.'));
    return;
  }
  let s;
  try {
    s = await getSession();
  } catch (e) {
    setSignedIn(false);
    const retry = h('button', { type: 'button', class: 'primary' }, 'Try again');
    retry.addEventListener('click', () => location.reload());
    put($('#view'), h('h1', { tabindex: '-1' }, 'tlogd is not answering'), h('p', { class: 'error', role: 'alert' }, describeError(e)), retry);
    return;
  }
  if (s && pinnedKey()) {
    setCsrf(s.csrf_token);
    enter(s);
  } else if (s) {
    setCsrf(s.csrf_token);
    showSignin('Pin the log’s verifier key in this browser to continue.', s);
  } else {
    showSignin(null);
  }
}

start();
