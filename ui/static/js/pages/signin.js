// Sign-in: exchange an access token (or none) for a session, and pin the
// log's verifier key in this browser. The key is shown whole, with a short
// fingerprint, to compare with the one the operator published; a key
// filled in from the server must be confirmed compared.
import { h, put, field, setBusy, isBusy } from '../dom.js';
import { signIn, setCsrf } from '../api.js';
import { pinnedKey, pinKey } from '../trust.js';
import { parseVerifierKey } from '../verify.js';
import { describeError, keyText, keyFingerprint } from '../format.js';

// render shows the sign-in form in root. info: /ui/api/info or null;
// session: an existing session (only the key is missing) or null;
// notice: why the user is here; done(session) continues into the app.
export function renderSignin(root, { info, infoError, session, notice }, done) {
  const pinned = pinnedKey();
  const suggested = !pinned && info && info.verifier_key ? info.verifier_key : '';
  const error = h('p', { id: 'login-error', role: 'alert', class: 'error' });
  const token = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false' });
  const vkey = h('textarea', { id: 'vkey', name: 'vkey', rows: 3, autocomplete: 'off', spellcheck: 'false', autocapitalize: 'off', required: true, value: pinned || suggested });
  const print = h('p', { id: 'vkey-print', class: 'fingerprint' });
  const showPrint = () => {
    let t = '';
    try { t = keyText(vkey.value) ? 'Fingerprint: ' + keyFingerprint(keyText(vkey.value)) : ''; } catch { t = 'Not a verifier key yet: paste it whole, as the operator published it.'; }
    if (print.textContent !== t) print.textContent = t;
  };
  showPrint();
  // A key filled in from the server must be confirmed compared before it
  // is pinned, however it got into the field: the field is compared with
  // the suggestion, not watched for edits.
  const fromServer = () => !!suggested && keyText(vkey.value) === keyText(suggested);

  let tokenHint = 'Paste the access token the operator gave you.';
  if (info && info.open) tokenHint = 'This log is open to everyone: leave it blank to continue without one.';
  else if (info && info.certificate) tokenHint = `Your browser presented the client certificate of “${info.certificate}”: leave this blank to sign in as that principal, or paste a token.`;
  else if (info && info.anonymous) tokenHint = 'Leave it blank to continue without one, with the roles the log gives anonymous readers.';
  else if (info && !info.tokens) tokenHint = 'This log accepts no tokens here: leave it blank.';

  const vkeyHint = pinned
    ? 'Pinned in this browser: every checkpoint is checked against it.'
    : 'The key every checkpoint must be signed with. Pin the key the operator published (tlogd prints it at start).';
  const confirmBox = h('input', { id: 'vkey-confirm', name: 'vkey-confirm', type: 'checkbox' });
  const warning = suggested
    ? h('div', { id: 'vkey-check', class: 'warning' },
      h('p', { id: 'vkey-warning', role: 'note' },
        'This key was filled in from what the server says about itself. Compare it with the key the operator published before you sign in: a server that lies could give you its own key.'),
      h('div', { class: 'field check' }, confirmBox, h('label', { for: 'vkey-confirm' }, 'I compared this key with the one the operator published')))
    : null;
  vkey.addEventListener('input', () => {
    if (warning) warning.hidden = !fromServer();
    showPrint();
  });
  // The key is one line: Enter signs in, as in the token field.
  vkey.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      vkey.closest('form').requestSubmit();
    }
  });

  const form = h('form', { id: 'signin-form', novalidate: true },
    session ? null : field('token', 'Access token', token, tokenHint),
    field('vkey', 'Log verifier key', vkey, vkeyHint),
    print,
    warning,
    h('button', { id: 'signin', type: 'submit', class: 'primary' }, session ? 'Pin key and continue' : 'Sign in'),
    error);
  vkey.setAttribute('aria-describedby', 'vkey-hint vkey-print');

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const button = form.querySelector('#signin');
    if (isBusy(button)) return;
    error.textContent = '';
    const key = keyText(vkey.value);
    if (!key) {
      error.textContent = 'Enter the log verifier key: ask the operator for the key they published.';
      vkey.focus();
      return;
    }
    let parsed;
    try {
      parsed = parseVerifierKey(key);
    } catch (err) {
      error.textContent = `This is not a valid verifier key (${err.message}). Paste it again, whole, as the operator published it.`;
      vkey.focus();
      return;
    }
    if (info && info.origin && parsed.name !== info.origin) {
      error.textContent = `This key is for the log "${parsed.name}", but this server's log is "${info.origin}". Check that you have the right key and the right server.`;
      vkey.focus();
      return;
    }
    if (fromServer() && !confirmBox.checked) {
      warning.hidden = false;
      error.textContent = 'Compare the key with the one the operator published, then tick “I compared this key with the one the operator published”. Or paste the published key yourself.';
      confirmBox.focus();
      return;
    }
    setBusy(button, true);
    try {
      const s = session || await signIn(token.value);
      setCsrf(s.csrf_token);
      pinKey(key);
      done(s);
    } catch (err) {
      error.textContent = err.code === 'Unauthenticated'
        ? `Sign-in refused: ${err.message}. Check the token and try again.`
        : describeError(err);
      (session ? vkey : token).focus();
    } finally {
      setBusy(button, false);
    }
  });

  put(root,
    h('section', { id: 'signin-view', class: 'signin', 'aria-labelledby': 'signin-h' },
      h('h1', { id: 'signin-h', tabindex: '-1' }, session ? 'Pin the log’s key' : 'Sign in'),
      notice ? h('p', { class: 'notice', role: 'status' }, notice) : null,
      infoError ? h('p', { class: 'error' }, describeError(infoError)) : null,
      info ? h('p', { class: 'muted' }, `Log: ${info.origin}${info.tls ? '' : ' (over plain HTTP: use it only on a trusted network)'}`) : null,
      form,
      h('p', { class: 'hint' }, 'This page trusts nothing the server says: it checks every checkpoint signature with the pinned key, every proof, and decodes every event itself.')));
  (session ? vkey : token).focus();
}
