// @ts-check
/**
 * One WebSocket per tab, with the CLI's resume rule: authenticate with the first frame, keep the
 * `sync_cursor` of everything delivered, and after any reconnect ask `sync` from it, so that every
 * message arrives once and in order however the connection was lost. Reconnects by itself,
 * quickly (0.25 s, doubling to 2 s), so a restarted server is back in the page within a second or
 * two.
 */

/** @typedef {import('./api.js').Api} Api */

/**
 * @typedef {object} Handlers
 * @property {(frame: any) => void} message    a new message (live or caught up), once each
 * @property {(frame: any) => void} change     an edit or deletion
 * @property {(frame: any) => void} event      anything else the server says
 * @property {(online: boolean) => void} status the connection is up (and caught up) or down
 * @property {() => void} signedOut            the session is over
 */

export class Live {
  /** @param {Api} api @param {Handlers} on */
  constructor(api, on) {
    this.api = api;
    this.on = on;
    /** Every message up to this id has been delivered. */
    this.cursor = 0;
    /** Ids already handed over (a sync page may repeat what arrived live meanwhile). */
    this.seen = new Set();
    /** @type {WebSocket | null} */
    this.socket = null;
    this.delay = 250;
    this.stopped = false;
    this.online = false;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    if (this.socket) this.socket.close(1000);
  }

  /** @param {object} frame */
  send(frame) {
    if (this.socket && this.online) this.socket.send(JSON.stringify(frame));
  }

  async connect() {
    if (this.stopped) return;
    let token;
    try {
      token = await this.api.freshToken();
    } catch (e) {
      const status = /** @type {any} */ (e).status;
      if (status === 401 || status === 403) return this.on.signedOut();
      return this.retry();
    }
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const socket = new WebSocket(`${scheme}://${location.host}/ws`);
    this.socket = socket;
    socket.onopen = () => socket.send(JSON.stringify({ type: 'auth', token }));
    socket.onmessage = (event) => this.frame(JSON.parse(event.data));
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.online) {
        this.online = false;
        this.on.status(false);
      }
      if (event.code === 4003 || event.code === 4001) {
        // The session ended (signed out elsewhere, deactivated) or the token was refused: a new
        // access token if the cookie still holds a session, else the sign-in.
        this.api.refresh().then(() => this.retry(), () => this.on.signedOut());
        return;
      }
      this.retry();
    };
  }

  retry() {
    if (this.stopped) return;
    setTimeout(() => this.connect(), this.delay);
    this.delay = Math.min(this.delay * 2, 2000);
  }

  /** @param {any} frame */
  frame(frame) {
    switch (frame.type) {
      case 'connected':
        this.delay = 250;
        if (this.cursor === 0) this.cursor = frame.sync_cursor;
        // From here this socket gets every new message; what came before is fetched by cursor.
        this.socket?.send(JSON.stringify({ type: 'sync', since: this.cursor, limit: 500 }));
        break;
      case 'sync':
        for (const m of frame.messages) this.deliver(m, m.message_id);
        for (const c of frame.changes || []) this.on.change(c);
        this.cursor = Math.max(this.cursor, frame.next_since);
        if (frame.has_more) {
          this.socket?.send(JSON.stringify({ type: 'sync', since: this.cursor, limit: 500 }));
        } else if (!this.online) {
          this.online = true;
          this.on.status(true);
        }
        break;
      case 'new_message':
        this.deliver(frame, frame.sync_cursor);
        break;
      case 'message_edited':
      case 'message_deleted':
      case 'message_reaction':
        this.on.change(frame);
        break;
      default:
        this.on.event(frame);
    }
  }

  /** @param {any} message @param {number} cursor */
  deliver(message, cursor) {
    if (!this.seen.has(message.message_id)) {
      this.seen.add(message.message_id);
      this.on.message(message);
    }
    if (cursor > this.cursor) this.cursor = cursor;
  }
}
