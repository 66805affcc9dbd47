// @ts-check
/**
 * The server's REST API for the page. The access token lives in this module's memory only; the
 * refresh token is an HttpOnly cookie the page cannot read (`/auth/web/*`), refreshed under a
 * lock shared by every tab, since a refresh token works once.
 */

/**
 * @typedef {{id: number, username: string, email?: string, full_name: ?string, role?: string}} User
 */

export class ApiError extends Error {
  /** @param {number} status @param {string} detail */
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

/** The server's `detail`, a string or a list of field errors, as one line. @param {any} body */
function detailOf(body) {
  const d = body && body.detail;
  if (typeof d === 'string') return d;
  if (Array.isArray(d)) return d.map((e) => `${(e.loc || []).slice(-1)[0]}: ${e.msg}`).join('; ');
  return 'Something went wrong';
}

/** Seconds until a JWT expires (0 if unreadable). @param {string} token */
function secondsLeft(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(part));
    return claims.exp - Date.now() / 1000;
  } catch {
    return 0;
  }
}

export class Api {
  constructor() {
    /** @type {string | null} */
    this.token = null;
    /** @type {User | null} */
    this.user = null;
    /** Called when the session is over and cannot be renewed. */
    this.onSignedOut = () => {};
  }

  /**
   * A `/auth/web/*` call: the cookie goes with it, the header proves it comes from the app.
   * @param {string} path
   * @param {object} [body]
   */
  async web(path, body) {
    const response = await fetch(`/auth/web/${path}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Rtchat-Web': '1' },
      body: JSON.stringify(body || {}),
      credentials: 'same-origin',
    });
    const reply = await response.json().catch(() => ({}));
    if (!response.ok) throw new ApiError(response.status, detailOf(reply));
    if (reply.access_token) {
      this.token = reply.access_token;
      this.user = reply.user;
    }
    return reply;
  }

  /** @param {string} username @param {string} password */
  signIn(username, password) {
    return this.web('login', { username, password });
  }

  /**
   * @param {{username: string, email: string, password: string, invite?: string}} account
   */
  register(account) {
    const body = { ...account };
    if (!body.invite) delete body.invite;
    return this.web('register', body);
  }

  /** After a reload: a new access token from the cookie, if there is a session. */
  async restore() {
    try {
      await this.refresh();
      return true;
    } catch {
      return false;
    }
  }

  /** One tab at a time: a refresh token spent twice would end the session. */
  async refresh() {
    const run = () => this.web('refresh');
    if (navigator.locks) {
      return navigator.locks.request('rtchat-refresh', run);
    }
    return run();
  }

  /** An access token good for at least another minute. */
  async freshToken() {
    if (!this.token || secondsLeft(this.token) < 60) await this.refresh();
    return /** @type {string} */ (this.token);
  }

  async signOut() {
    try {
      await this.web('logout');
    } finally {
      this.token = null;
      this.user = null;
    }
  }

  /**
   * A REST call with the access token, renewed once if the server says it has expired.
   * @param {string} method
   * @param {string} path
   * @param {object} [body]
   * @returns {Promise<any>}
   */
  async call(method, path, body) {
    const send = async () => {
      const token = await this.freshToken();
      /** @type {Record<string, string>} */
      const headers = { Authorization: `Bearer ${token}` };
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      return fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin',
      });
    };
    let response = await send();
    if (response.status === 401) {
      try {
        await this.refresh();
      } catch {
        this.onSignedOut();
        throw new ApiError(401, 'Your session has ended: sign in again');
      }
      response = await send();
    }
    const reply = await response.json().catch(() => ({}));
    if (!response.ok) throw new ApiError(response.status, detailOf(reply));
    return reply;
  }
}
