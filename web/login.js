// login.js -- the login page (GET /login): a form that POSTs the user name
// and password as JSON to /api/v1/login. weir answers with an HttpOnly,
// SameSite=Strict session cookie (the script never sees it) and the
// session's CSRF token, which the dashboard must send as X-CSRF-Token with
// every state-changing request. The token is kept in sessionStorage for the
// dashboard's first requests; the dashboard also fetches it again from
// GET /api/v1/me on each load (api.js whoami()), so a reload or a new tab
// works without it. Then the browser goes on to ?next= (default /).
//
// Plain fetch rather than api.js: there a 401 means "go to the login page",
// here it means "wrong password".

const CSRF_KEY = 'weir.csrf';
const form = document.getElementById('login-form');
const user = document.getElementById('login-user');
const password = document.getElementById('login-password');
const errorBox = document.getElementById('login-error');
const submit = document.getElementById('login-submit');

/** Where to go after logging in: a path on this origin only (never
 *  "//evil.example" or "https://..."), so ?next= cannot send the user away. */
function nextPath() {
  const next = new URLSearchParams(location.search).get('next') || '/';
  if (!next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return '/';
  const u = new URL(next, location.origin);
  if (u.origin !== location.origin || u.pathname === '/login') return '/';
  return u.pathname + u.search + u.hash;
}

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = !text;
}

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  showError('');
  submit.disabled = true;
  try {
    let res;
    try {
      res = await fetch('/api/v1/login', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ username: user.value, password: password.value }),
        credentials: 'same-origin',
      });
    } catch {
      showError('weir is unreachable; try again.');
      return;
    }
    const body = await res.json().catch(() => null);
    if (res.ok && body && body.csrf_token) {
      try { sessionStorage.setItem(CSRF_KEY, body.csrf_token); } catch { /* storage off: api.js asks /me */ }
      location.assign(nextPath());
      return;
    }
    password.value = '';
    password.focus();
    if (res.status === 401) showError('Wrong user name or password.');
    else showError((body && body.error) || `Login failed (HTTP ${res.status}).`);
  } finally {
    submit.disabled = false;
  }
});
