// @ts-check
/**
 * rtchat's web client: sign-in, the conversation list, one open conversation, the composer.
 * Plain DOM, no framework: every piece of server text goes in as text (`text.js`). The page holds
 * at most `WINDOW` messages of a conversation: scrolling loads older or newer pages and drops what
 * is far off screen, so a room of any length stays smooth.
 */

import { Api, ApiError } from './api.js';
import { Live } from './live.js';
import { attachmentsNode, Tray } from './files.js';
import { el, markdown, richText, when } from './text.js';

/** The reactions offered by the picker (any other can be sent by the API and is shown too). */
const PICKER = ['👍', '❤️', '😂', '🎉', '👀', '🙏', '✅', '🚀'];

/** Messages in a page of history. */
const PAGE = 50;
/** Messages the page keeps at most. */
const WINDOW = 200;

/**
 * @typedef {object} Room
 * @property {number | null} id            null: a direct chat not started yet
 * @property {'direct' | 'group'} kind
 * @property {string} name                 `@bob` or `#ops`
 * @property {number} [otherId]            a direct chat's other person
 * @property {string | null} [topic]
 * @property {number} unread
 * @property {number} mentions
 * @property {string} last
 * @property {string} lastAt
 * @property {boolean} [muted]              muted by you: no notification, not in the title's total
 */

/**
 * A message as the page shows it, from history or a live frame.
 * @typedef {object} Shown
 * @property {number} id
 * @property {number} room
 * @property {number | null} senderId
 * @property {string} sender
 * @property {string} content
 * @property {string} at
 * @property {boolean} edited
 * @property {boolean} deleted
 * @property {boolean} mention
 * @property {any} replyTo
 * @property {string | null} clientId
 * @property {import('./files.js').Attachment[]} attachments
 * @property {{emoji: string, count: number, me: boolean}[]} reactions
 * @property {number | null} threadRoot    a reply: its thread's first message
 * @property {{replies: number, last_reply_at?: string} | null} thread   a thread's first message
 */

const api = new Api();
const root = /** @type {HTMLElement} */ (document.getElementById('app'));
const announcer = /** @type {HTMLElement} */ (document.getElementById('announcer'));

const state = {
  /** @type {Map<string, Room>} by `key()` */
  rooms: new Map(),
  /** @type {Room | null} */
  current: null,
  /** @type {Shown[]} the open room's window, in id order */
  window: [],
  /** the window reaches the room's first message */
  atOldest: false,
  /** the window reaches the room's newest message */
  atNewest: true,
  loading: false,
  /** The thread open beside the conversation: its first message's id and its list. */
  /** @type {{root: number, log: HTMLElement, panel: HTMLElement} | null} */
  thread: null,
  /** @type {Map<string, {room: Room, content: string, replyTo: number | null, attachments: number[], node: HTMLElement}>} */
  pending: new Map(),
  /** @type {Set<number>} */
  online: new Set(),
  /** @type {Map<number, Map<string, number>>} room -> who is typing -> until when */
  typing: new Map(),
  /** @type {Shown | null} */
  replyTo: null,
  /** @type {Shown | null} */
  editing: null,
  lastTypingSent: 0,
  connected: false,
};

/** @type {Live | null} */
let live = null;

/** @param {Room} room */
function key(room) {
  return room.id !== null ? `r${room.id}` : `u${room.otherId}`;
}

function me() {
  return /** @type {import('./api.js').User} */ (api.user);
}

/** Says something to screen readers. @param {string} text */
function announce(text) {
  announcer.textContent = '';
  setTimeout(() => (announcer.textContent = text), 50);
}

// ----- signing in -----

/** @param {'signin' | 'register'} mode @param {string} [error] */
function showSignIn(mode, error) {
  root.replaceChildren();
  const main = el('main', { class: 'signin' });
  const form = el('form', { 'aria-label': mode === 'signin' ? 'Sign in' : 'Create account' });
  form.append(el('h1', {}, mode === 'signin' ? 'Sign in to rtchat' : 'Create an account'));
  /** @param {string} label @param {string} name @param {string} type @param {string} [hint] */
  const field = (label, name, type, hint) => {
    const wrap = el('label', {}, label);
    const input = /** @type {HTMLInputElement} */ (el('input', { name, type, autocomplete: name === 'password' ? (mode === 'signin' ? 'current-password' : 'new-password') : name }));
    if (name !== 'invite') input.required = true;
    wrap.append(input);
    if (hint) wrap.append(el('small', {}, hint));
    form.append(wrap);
    return input;
  };
  const username = field('Username', 'username', 'text');
  const email = mode === 'register' ? field('Email', 'email', 'email') : null;
  const password = field('Password', 'password', 'password');
  const invite = mode === 'register' ? field('Invite code', 'invite', 'text', 'if this server admits by invitation') : null;
  const problem = el('p', { role: 'alert', class: 'problem' }, error || '');
  form.append(problem);
  const submit = el('button', { type: 'submit' }, mode === 'signin' ? 'Sign in' : 'Create account');
  form.append(submit);
  const other = el('button', { type: 'button', class: 'link' }, mode === 'signin' ? 'Create account' : 'I have an account: sign in');
  other.addEventListener('click', () => showSignIn(mode === 'signin' ? 'register' : 'signin'));
  form.append(other);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    problem.textContent = '';
    try {
      if (mode === 'signin') {
        await api.signIn(username.value.trim(), password.value);
      } else {
        await api.register({
          username: username.value.trim(),
          email: /** @type {HTMLInputElement} */ (email).value.trim(),
          password: password.value,
          invite: /** @type {HTMLInputElement} */ (invite).value.trim(),
        });
      }
      await startApp();
    } catch (e) {
      problem.textContent = e instanceof Error ? e.message : String(e);
    }
  });
  main.append(form);
  root.append(main);
  username.focus();
  performance.mark('rtchat-ready');
}

// ----- the signed-in app -----

const view = {
  /** @type {HTMLElement} */ list: el('ul'),
  /** @type {HTMLElement} */ log: el('div'),
  /** @type {HTMLElement} */ header: el('div'),
  /** @type {HTMLElement} */ typing: el('p'),
  /** @type {HTMLElement} */ chip: el('div'),
  /** @type {HTMLTextAreaElement} */ composer: /** @type {HTMLTextAreaElement} */ (el('textarea')),
  /** @type {HTMLElement} */ status: el('span'),
  /** @type {HTMLElement} */ conversation: el('main'),
  /** @type {HTMLElement} */ newer: el('button'),
  /** The files chosen for the next message in the open room. */
  /** @type {Tray | null} */ tray: null,
};

async function startApp() {
  api.onSignedOut = () => signedOut();
  buildLayout();
  await loadRooms();
  try {
    const online = await api.call('GET', '/ws/online-users');
    state.online = new Set(online.online_users);
  } catch {
    // presence is a nicety
  }
  renderRooms();
  performance.mark('rtchat-ready');
  live = new Live(api, {
    message: onMessage,
    change: onChange,
    event: onEvent,
    status: onStatus,
    signedOut: () => signedOut(),
  });
  live.start();
}

function signedOut() {
  live?.stop();
  live = null;
  state.rooms.clear();
  state.current = null;
  view.tray = null;
  showSignIn('signin', 'Your session has ended: sign in again.');
}

function buildLayout() {
  root.replaceChildren();
  const top = el('header', { class: 'top' });
  top.append(el('span', { class: 'brand' }, 'rtchat'));
  view.status = el('span', { class: 'status', role: 'status' }, 'connecting…');
  top.append(view.status);
  top.append(el('span', { class: 'me' }, `@${me().username}`));
  if ('Notification' in window && Notification.permission === 'default') {
    const notify = el('button', { type: 'button' }, 'Enable notifications');
    notify.addEventListener('click', async () => {
      await Notification.requestPermission();
      notify.remove();
    });
    top.append(notify);
  }
  const invite = el('button', { type: 'button' }, 'Invite someone');
  invite.addEventListener('click', () => showInvite());
  top.append(invite);
  const out = el('button', { type: 'button' }, 'Sign out');
  out.addEventListener('click', async () => {
    live?.stop();
    await api.signOut().catch(() => {});
    showSignIn('signin');
  });
  top.append(out);

  const nav = el('nav', { 'aria-label': 'Conversations', class: 'rooms' });
  const actions = el('div', { class: 'actions' });
  const newDm = el('button', { type: 'button' }, 'New direct message');
  newDm.addEventListener('click', () => startForm('dm', actions));
  const newGroup = el('button', { type: 'button' }, 'New group');
  newGroup.addEventListener('click', () => startForm('group', actions));
  actions.append(newDm, newGroup);
  const search = el('form', { role: 'search', class: 'search' });
  const searchLabel = el('label', {}, 'Search messages');
  const searchBox = /** @type {HTMLInputElement} */ (el('input', { type: 'search', name: 'q' }));
  searchLabel.append(searchBox);
  search.append(searchLabel);
  search.addEventListener('submit', (event) => {
    event.preventDefault();
    if (searchBox.value.trim()) showSearch(searchBox.value.trim());
  });
  view.list = el('ul', { class: 'room-list', 'aria-label': 'Conversations' });
  nav.append(actions, search, view.list);

  view.conversation = el('main', { class: 'conversation', 'aria-label': 'Conversation' });
  view.conversation.append(el('p', { class: 'empty' }, 'Choose a conversation, or start one.'));
  // Files dropped anywhere on an open conversation are added to its next message.
  view.conversation.addEventListener('dragover', (event) => {
    if (!view.tray || !event.dataTransfer?.types.includes('Files')) return;
    event.preventDefault();
    view.conversation.classList.add('dropping');
  });
  view.conversation.addEventListener('dragleave', () => view.conversation.classList.remove('dropping'));
  view.conversation.addEventListener('drop', (event) => {
    view.conversation.classList.remove('dropping');
    if (!view.tray || !event.dataTransfer?.files.length) return;
    event.preventDefault();
    view.tray.add(event.dataTransfer.files);
  });
  root.append(top, nav, view.conversation);
}

/** A new single-use invite code (7 days), shown with what the teammate does with it. */
async function showInvite() {
  const c = view.conversation;
  state.current = null;
  view.tray = null;
  renderRooms();
  c.replaceChildren(el('h2', {}, 'Invite someone'));
  try {
    const invite = await api.call('POST', '/invites', {});
    const code = el('output', { class: 'code', 'aria-label': 'Invite code' }, invite.code);
    c.append(
      el('p', {}, `Send this code to your teammate (it works once, until ${when(invite.expires_at)}):`),
      code,
      el('p', {}, `They open ${location.origin}/ and choose "Create account", or run:`),
      el('pre', {}, `rtchat register NAME --email EMAIL --invite ${invite.code} --server ${location.origin}`),
    );
  } catch (e) {
    c.append(el('p', { role: 'alert', class: 'problem' }, e instanceof Error ? e.message : String(e)));
  }
}

/** @param {'dm' | 'group'} kind @param {HTMLElement} where */
function startForm(kind, where) {
  where.querySelector('form')?.remove();
  const form = el('form', { class: 'start', 'aria-label': kind === 'dm' ? 'New direct message' : 'New group' });
  const problem = el('p', { role: 'alert', class: 'problem' });
  if (kind === 'dm') {
    const label = el('label', {}, 'Username');
    const input = /** @type {HTMLInputElement} */ (el('input', { type: 'text', name: 'username', required: '' }));
    label.append(input);
    form.append(label, el('button', { type: 'submit' }, 'Start'), problem);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      try {
        const name = input.value.trim().replace(/^@/, '');
        const user = await api.call('GET', `/users/by-username/${encodeURIComponent(name)}`);
        if (user.id === me().id) throw new Error('That is you');
        let room = [...state.rooms.values()].find((r) => r.kind === 'direct' && r.otherId === user.id);
        if (!room) {
          room = { id: null, kind: 'direct', name: `@${user.username}`, otherId: user.id, unread: 0, mentions: 0, last: '', lastAt: new Date().toISOString() };
          state.rooms.set(key(room), room);
          renderRooms();
        }
        form.remove();
        openRoom(room);
      } catch (e) {
        problem.textContent = e instanceof Error ? e.message : String(e);
      }
    });
    where.append(form);
    input.focus();
  } else {
    const name = el('label', {}, 'Group name');
    const nameInput = /** @type {HTMLInputElement} */ (el('input', { type: 'text', name: 'name', required: '' }));
    name.append(nameInput);
    const members = el('label', {}, 'Members');
    const membersInput = /** @type {HTMLInputElement} */ (el('input', { type: 'text', name: 'members', placeholder: '@bob, @carol' }));
    members.append(membersInput);
    const pub = el('label', { class: 'check' });
    const pubInput = /** @type {HTMLInputElement} */ (el('input', { type: 'checkbox', name: 'public' }));
    pub.append(pubInput, document.createTextNode(' Public (anyone on the server may join)'));
    form.append(name, members, pub, el('button', { type: 'submit' }, 'Create group'), problem);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      try {
        const names = membersInput.value.split(/[\s,]+/).map((n) => n.replace(/^@/, '')).filter(Boolean);
        const ids = [];
        for (const n of names) ids.push((await api.call('GET', `/users/by-username/${encodeURIComponent(n)}`)).id);
        const reply = await api.call('POST', '/groups/create', { name: nameInput.value.trim(), member_ids: ids, is_public: pubInput.checked });
        const g = reply.group;
        const room = { id: g.id, kind: /** @type {const} */ ('group'), name: `#${g.name}`, topic: null, unread: 0, mentions: 0, last: '', lastAt: g.created_at };
        state.rooms.set(key(room), room);
        renderRooms();
        form.remove();
        openRoom(room);
      } catch (e) {
        problem.textContent = e instanceof Error ? e.message : String(e);
      }
    });
    where.append(form);
    nameInput.focus();
  }
}

async function loadRooms() {
  const [chats, groups] = await Promise.all([api.call('GET', '/messages/chats'), api.call('GET', '/groups/my-groups')]);
  const fresh = new Map();
  for (const c of chats) {
    /** @type {Room} */
    const room = { id: c.chat_room_id, kind: 'direct', name: `@${c.other_user_username}`, otherId: c.other_user_id, unread: c.unread_count, mentions: c.mention_count || 0, last: c.last_message || '', lastAt: c.last_message_time || '', muted: Boolean(c.muted) };
    fresh.set(key(room), room);
  }
  for (const g of groups) {
    /** @type {Room} */
    const room = { id: g.id, kind: 'group', name: `#${g.name}`, topic: g.topic || null, unread: g.unread_count, mentions: g.mention_count || 0, last: g.last_message || '', lastAt: g.last_message_time || g.created_at, muted: Boolean(g.muted) };
    fresh.set(key(room), room);
  }
  // A message that arrived live while the lists were being read is newer than what they say.
  for (const [k, room] of fresh) {
    const known = state.rooms.get(k);
    if (known && known.lastAt && (!room.lastAt || known.lastAt > room.lastAt)) {
      room.last = known.last;
      room.lastAt = known.lastAt;
      room.unread = known.unread;
      room.mentions = known.mentions;
    }
  }
  // A direct chat opened here but not started yet stays; once it exists (the other person wrote
  // first) it becomes that room, keeping the object the page holds.
  for (const [k, draft] of state.rooms) {
    if (draft.id !== null) continue;
    const real = [...fresh.values()].find((r) => r.kind === 'direct' && r.otherId === draft.otherId);
    if (!real) {
      fresh.set(k, draft);
      continue;
    }
    Object.assign(draft, real);
    fresh.set(key(real), draft);
  }
  state.rooms = fresh;
  if (state.current) state.current = state.rooms.get(key(state.current)) || state.current;
}

function renderRooms() {
  const rooms = [...state.rooms.values()].sort((a, b) => (b.lastAt || '').localeCompare(a.lastAt || ''));
  const items = rooms.map((room) => {
    const li = el('li');
    const button = el('button', { type: 'button', class: 'room' });
    if (state.current && key(state.current) === key(room)) button.setAttribute('aria-current', 'true');
    const name = el('span', { class: 'name' }, room.name);
    if (room.kind === 'direct' && room.otherId !== undefined) {
      const on = state.online.has(room.otherId);
      name.prepend(el('span', { class: on ? 'dot on' : 'dot', 'aria-label': on ? 'online' : 'offline', role: 'img' }));
    }
    if (room.muted) name.append(el('span', { class: 'muted' }, ' (muted)'));
    button.append(name);
    if (room.unread > 0) {
      const label = `${room.unread} unread${room.mentions > 0 ? `, ${room.mentions} mention${room.mentions > 1 ? 's' : ''}` : ''}`;
      button.append(el('span', { class: room.mentions > 0 ? 'badge mention' : 'badge', 'aria-label': label }, String(room.unread)));
    }
    button.append(el('span', { class: 'last' }, room.last));
    button.addEventListener('click', () => openRoom(room));
    li.append(button);
    return li;
  });
  view.list.replaceChildren(...items);
  // A muted room keeps its own count but stays out of the total (its mentions still count).
  const total = rooms.reduce((n, r) => n + (r.muted ? r.mentions : r.unread), 0);
  document.title = total > 0 ? `(${total}) rtchat` : 'rtchat';
}

// ----- one conversation -----

/** @param {any} m a history message or a live frame @returns {Shown} */
function shown(m) {
  return {
    id: m.id ?? m.message_id,
    room: m.chat_room_id ?? m.room_id,
    senderId: m.sender_id ?? null,
    sender: m.sender_username || 'someone',
    content: m.content,
    at: m.created_at,
    edited: Boolean(m.edited_at),
    deleted: Boolean(m.deleted),
    mention: Boolean(m.mention),
    replyTo: m.reply_to || null,
    clientId: m.client_id || null,
    attachments: m.attachments || [],
    reactions: m.reactions || [],
    threadRoot: m.thread_root ?? null,
    thread: m.thread || null,
  };
}

/** @param {Room} room @param {{before?: number, after?: number}} at */
async function page(room, at = {}) {
  const query = new URLSearchParams({ limit: String(PAGE) });
  if (at.before) query.set('before_id', String(at.before));
  if (at.after) query.set('after_id', String(at.after));
  if (room.id === null) return [];
  const path = room.kind === 'group' ? `/groups/${room.id}/messages` : `/messages/chat/${room.otherId}`;
  const messages = await api.call('GET', `${path}?${query}`);
  return messages.map(shown);
}

/**
 * Opens a conversation at its newest messages, or (`at`, from a search) around that message,
 * which is marked and brought into view.
 * @param {Room} room
 * @param {number} [at]
 */
async function openRoom(room, at) {
  performance.mark('rtchat-open');
  state.current = room;
  state.replyTo = null;
  state.editing = null;
  renderRooms();
  const c = view.conversation;
  state.thread = null;
  c.replaceChildren();
  view.header = el('header', { class: 'room-header' });
  view.header.append(el('h2', {}, room.name));
  if (room.topic) view.header.append(el('p', { class: 'topic' }, room.topic));
  if (room.kind === 'group') {
    const add = el('button', { type: 'button', class: 'add-people' }, 'Add people');
    add.addEventListener('click', () => addPeopleForm(room));
    view.header.append(add);
  }
  view.log = el('div', { role: 'log', 'aria-label': `Messages with ${room.name}`, tabindex: '0', class: 'log' });
  view.log.addEventListener('scroll', onScroll);
  // At the very top a wheel, a swipe or a key moves nothing and fires no scroll: they still ask
  // for older messages.
  view.log.addEventListener('wheel', onScroll, { passive: true });
  view.log.addEventListener('touchmove', onScroll, { passive: true });
  view.log.addEventListener('keydown', (event) => {
    if (['Home', 'PageUp', 'ArrowUp', 'End', 'PageDown', 'ArrowDown'].includes(event.key)) onScroll();
  });
  view.newer = el('button', { type: 'button', class: 'newer', hidden: '' }, 'Newer messages below');
  view.newer.addEventListener('click', () => jumpToLatest());
  view.typing = el('p', { class: 'typing', 'aria-live': 'off' });
  view.chip = el('div', { class: 'chip' });
  const form = el('form', { class: 'composer' });
  const label = el('label', { for: 'composer', class: 'visually-hidden' }, 'Message');
  view.composer = /** @type {HTMLTextAreaElement} */ (el('textarea', { id: 'composer', rows: '2', placeholder: `Message ${room.name}` }));
  view.composer.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    } else if (event.key === 'Escape') {
      state.replyTo = null;
      state.editing = null;
      renderChip();
    }
  });
  view.composer.addEventListener('input', () => typed());
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    submit();
  });
  view.tray = new Tray(api, showProblem);
  const picker = /** @type {HTMLInputElement} */ (el('input', { type: 'file', multiple: '', class: 'visually-hidden', tabindex: '-1', 'aria-hidden': 'true' }));
  picker.addEventListener('change', () => {
    if (picker.files) view.tray?.add(picker.files);
    picker.value = '';
    view.composer.focus();
  });
  const attach = el('button', { type: 'button', class: 'attach', title: 'Attach files (or drop or paste them here)' }, 'Attach');
  attach.addEventListener('click', () => picker.click());
  view.composer.addEventListener('paste', (event) => {
    const files = event.clipboardData ? [...event.clipboardData.files] : [];
    if (files.length === 0) return;
    event.preventDefault();
    view.tray?.add(files);
  });
  form.append(attach, picker, label, view.composer, el('button', { type: 'submit' }, 'Send'));
  c.append(view.header, view.log, view.newer, view.typing, view.chip, view.tray.node, form);
  state.window = [];
  state.atOldest = false;
  state.atNewest = true;
  if (at !== undefined) {
    // The page ending at the message, and the one after it.
    const [upto, after] = await Promise.all([page(room, { before: at + 1 }), page(room, { after: at })]);
    if (state.current !== room) return;
    state.window = [...upto, ...after];
    state.atOldest = upto.length < PAGE;
    state.atNewest = after.length < PAGE;
    renderLog(false);
    const found = view.log.querySelector(`[data-id="${at}"]`);
    if (found) {
      found.setAttribute('aria-current', 'true');
      found.setAttribute('tabindex', '-1');
      found.scrollIntoView({ block: 'center' });
      /** @type {HTMLElement} */ (found).focus();
    }
    return;
  }
  const messages = await page(room);
  if (state.current !== room) return;
  state.window = messages;
  state.atOldest = messages.length < PAGE;
  renderLog(true);
  performance.measure('rtchat-room-shown', 'rtchat-open');
  for (const p of state.pending.values()) if (p.room === room) view.log.append(p.node);
  room.unread = 0;
  room.mentions = 0;
  renderRooms();
  view.composer.focus();
}

/** A form in the room's header: usernames to add to the group (its owner and admins may). @param {Room} room */
function addPeopleForm(room) {
  view.header.querySelector('form')?.remove();
  const form = el('form', { class: 'start', 'aria-label': 'Add people' });
  const label = el('label', {}, 'Usernames');
  const input = /** @type {HTMLInputElement} */ (el('input', { type: 'text', name: 'usernames', placeholder: '@dave, @erin', required: '' }));
  label.append(input);
  const problem = el('p', { role: 'alert', class: 'problem' });
  form.append(label, el('button', { type: 'submit' }, 'Add'), problem);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const ids = [];
      for (const n of input.value.split(/[\s,]+/).map((x) => x.replace(/^@/, '')).filter(Boolean)) {
        ids.push((await api.call('GET', `/users/by-username/${encodeURIComponent(n)}`)).id);
      }
      await api.call('POST', `/groups/${room.id}/members`, { user_ids: ids });
      form.remove();
    } catch (e) {
      problem.textContent = e instanceof Error ? e.message : String(e);
    }
  });
  view.header.append(form);
  input.focus();
}

/** @param {boolean} toBottom */
function renderLog(toBottom) {
  const nodes = state.window.map(messageNode);
  const pending = [...view.log.querySelectorAll('[data-pending]')];
  view.log.replaceChildren(...nodes, ...pending);
  if (toBottom) view.log.scrollTop = view.log.scrollHeight;
  view.newer.hidden = state.atNewest;
}

/** @param {Shown} m */
function messageNode(m) {
  const mine = m.senderId === me().id;
  const node = el('article', { class: mine ? 'message mine' : 'message', 'data-id': String(m.id), 'aria-label': `${m.sender}, ${when(m.at)}` });
  if (m.mention) node.classList.add('mentions-me');
  const head = el('header');
  head.append(el('span', { class: 'sender' }, m.sender), el('time', { datetime: m.at }, when(m.at)));
  if (m.edited && !m.deleted) head.append(el('span', { class: 'edited' }, '(edited)'));
  node.append(head);
  if (m.replyTo) {
    const quote = el('blockquote', { class: 'quote' });
    quote.append(el('span', { class: 'sender' }, `@${m.replyTo.sender_username || 'someone'}`), document.createTextNode(` ${m.replyTo.deleted ? '(deleted)' : m.replyTo.excerpt || ''}`));
    node.append(quote);
  }
  const body = el('div', { class: 'body' });
  if (m.deleted) {
    body.textContent = 'This message was deleted.';
    body.classList.add('deleted');
  } else {
    body.append(markdown(m.content, me().username));
  }
  if (m.deleted || m.content || m.attachments.length === 0) node.append(body);
  if (!m.deleted && m.attachments.length > 0) node.append(attachmentsNode(api, m.attachments, showProblem));
  if (!m.deleted && m.reactions.length > 0) node.append(reactionsNode(m));
  if (m.thread && m.thread.replies > 0) {
    const n = m.thread.replies;
    const link = el('button', { type: 'button', class: 'thread-link' }, `${n} ${n === 1 ? 'reply' : 'replies'}${m.thread.last_reply_at ? `, last ${when(m.thread.last_reply_at)}` : ''}`);
    link.addEventListener('click', () => openThread(m.id));
    node.append(link);
  }
  if (!m.deleted) {
    const actions = el('div', { class: 'message-actions' });
    const reply = el('button', { type: 'button' }, 'Reply');
    reply.addEventListener('click', () => {
      state.replyTo = m;
      state.editing = null;
      renderChip();
      view.composer.focus();
    });
    const inThread = el('button', { type: 'button' }, 'Thread');
    inThread.addEventListener('click', () => openThread(m.threadRoot ?? m.id));
    actions.append(inThread);
    const reactButton = el('button', { type: 'button', 'aria-haspopup': 'true' }, 'React');
    reactButton.addEventListener('click', () => togglePicker(node, m));
    actions.append(reply, reactButton);
    if (mine) {
      const edit = el('button', { type: 'button' }, 'Edit');
      edit.addEventListener('click', () => {
        state.editing = m;
        state.replyTo = null;
        view.composer.value = m.content;
        renderChip();
        view.composer.focus();
      });
      const del = el('button', { type: 'button' }, 'Delete');
      del.addEventListener('click', async () => {
        if (!confirm('Delete this message for everyone?')) return;
        await api.call('DELETE', `/messages/${m.id}`).catch((e) => showProblem(e));
      });
      actions.append(edit, del);
    }
    node.append(actions);
  }
  return node;
}

/** A message's reactions: each a button with its count, pressed when it is yours (a click takes it back or adds it). @param {Shown} m */
function reactionsNode(m) {
  const row = el('div', { class: 'reactions', role: 'group', 'aria-label': 'Reactions' });
  for (const r of m.reactions) {
    const button = el('button', { type: 'button', 'aria-pressed': String(r.me), title: r.me ? 'Take your reaction back' : 'React the same' }, `${r.emoji} ${r.count}`);
    button.addEventListener('click', () => react(m, r.emoji, !r.me));
    row.append(button);
  }
  return row;
}

/** The emoji picker under a message, opened and closed by its React button. @param {HTMLElement} node @param {Shown} m */
function togglePicker(node, m) {
  const open = node.querySelector('.picker');
  if (open) {
    open.remove();
    return;
  }
  const picker = el('div', { class: 'picker', role: 'group', 'aria-label': 'Pick a reaction' });
  for (const emoji of PICKER) {
    const button = el('button', { type: 'button', 'aria-label': `React ${emoji}` }, emoji);
    button.addEventListener('click', () => {
      picker.remove();
      const mine = m.reactions.some((r) => r.emoji === emoji && r.me);
      if (!mine) react(m, emoji, true);
    });
    picker.append(button);
  }
  node.append(picker);
  /** @type {HTMLElement} */ (picker.firstChild)?.focus();
}

/** @param {Shown} m @param {string} emoji @param {boolean} add */
async function react(m, emoji, add) {
  // What the page shows comes from the live frame, for this tab as for every other.
  await api.call(add ? 'POST' : 'DELETE', `/messages/${m.id}/reactions`, { emoji }).catch((e) => showProblem(e));
}

function renderChip() {
  view.chip.replaceChildren();
  const target = state.editing || state.replyTo;
  if (!target) return;
  const what = state.editing ? 'Editing your message' : `Replying to @${target.sender}: ${target.content.slice(0, 60)}`;
  const cancel = el('button', { type: 'button', 'aria-label': 'Cancel' }, '×');
  cancel.addEventListener('click', () => {
    if (state.editing) view.composer.value = '';
    state.replyTo = null;
    state.editing = null;
    renderChip();
  });
  view.chip.append(el('span', {}, what), cancel);
}

/** @param {unknown} e */
function showProblem(e) {
  const text = e instanceof Error ? e.message : String(e);
  view.typing.textContent = text;
  announce(text);
}

async function onScroll() {
  const log = view.log;
  const room = state.current;
  if (!room || state.loading) return;
  if (log.scrollTop < 80 && !state.atOldest && state.window.length > 0) {
    state.loading = true;
    try {
      const anchor = state.window[0].id;
      const older = await page(room, { before: anchor });
      if (state.current !== room) return;
      const keep = keepInPlace(anchor);
      state.atOldest = older.length < PAGE;
      state.window = [...older, ...state.window];
      if (state.window.length > WINDOW) {
        state.window = state.window.slice(0, WINDOW);
        state.atNewest = false;
      }
      renderLog(false);
      keep();
      // Never left at the very top with more above: a scroll there fires no event.
      if (log.scrollTop === 0 && !state.atOldest) log.scrollTop = 1;
    } finally {
      state.loading = false;
    }
  } else if (log.scrollHeight - log.scrollTop - log.clientHeight < 80 && !state.atNewest) {
    state.loading = true;
    try {
      await loadNewer(room);
    } finally {
      state.loading = false;
    }
  }
}

/** @param {Room} room */
async function loadNewer(room) {
  const last = state.window[state.window.length - 1];
  const newer = await page(room, { after: last ? last.id : 0 });
  if (state.current !== room) return;
  const keep = last ? keepInPlace(last.id) : () => {};
  state.atNewest = newer.length < PAGE;
  state.window = [...state.window, ...newer];
  if (state.window.length > WINDOW) {
    state.window = state.window.slice(state.window.length - WINDOW);
    state.atOldest = false;
  }
  renderLog(false);
  keep();
}

/**
 * Where the message `id` is on screen now; the returned function scrolls so that it is there
 * again after the window changed (pages added at one end, dropped at the other).
 * @param {number} id
 */
function keepInPlace(id) {
  const log = view.log;
  const node = /** @type {HTMLElement | null} */ (log.querySelector(`[data-id="${id}"]`));
  const offset = node ? node.offsetTop - log.scrollTop : 0;
  return () => {
    const again = /** @type {HTMLElement | null} */ (log.querySelector(`[data-id="${id}"]`));
    if (again) log.scrollTop = again.offsetTop - offset;
  };
}

async function jumpToLatest() {
  const room = state.current;
  if (!room) return;
  state.window = await page(room);
  state.atNewest = true;
  state.atOldest = state.window.length < PAGE;
  renderLog(true);
}

function typed() {
  const room = state.current;
  if (!room || room.id === null || state.editing) return;
  const now = Date.now();
  if (now - state.lastTypingSent > 3000) {
    state.lastTypingSent = now;
    live?.send({ type: 'typing', room_id: room.id });
  }
}

async function submit() {
  const room = state.current;
  const text = view.composer.value;
  const withFiles = Boolean(view.tray && !view.tray.empty && !state.editing);
  if (!room || (!text.trim() && !withFiles)) return;
  view.composer.value = '';
  if (state.editing) {
    const m = state.editing;
    state.editing = null;
    renderChip();
    await api.call('PATCH', `/messages/${m.id}`, { content: text }).catch((e) => showProblem(e));
    return;
  }
  const replyTo = state.replyTo ? state.replyTo.id : null;
  state.replyTo = null;
  renderChip();
  const clientId = crypto.randomUUID();
  const node = el('article', { class: 'message mine pending', 'data-pending': clientId, 'aria-label': 'pending' });
  const head = el('header');
  head.append(el('span', { class: 'sender' }, me().username), el('span', { class: 'state' }, 'sending…'));
  const body = el('p', { class: 'body' });
  body.append(richText(text, me().username));
  node.append(head, body);
  const files = withFiles && view.tray ? await view.tray.take() : [];
  if (files.length > 0) node.append(el('p', { class: 'body' }, files.map((f) => f.name).join(', ')));
  else if (!text.trim()) return;
  state.pending.set(clientId, { room, content: text, replyTo, attachments: files.map((f) => f.id), node });
  if (!state.atNewest) await jumpToLatest();
  view.log.append(node);
  view.log.scrollTop = view.log.scrollHeight;
  await deliverPending(clientId);
}

/** Sends a pending message (again): the same `client_id` never stores it twice. @param {string} clientId */
async function deliverPending(clientId) {
  const p = state.pending.get(clientId);
  if (!p) return;
  const body = {
    content: p.content,
    client_id: clientId,
    ...(p.replyTo ? { reply_to: p.replyTo } : {}),
    ...(p.attachments.length ? { attachments: p.attachments } : {}),
  };
  try {
    const reply = p.room.kind === 'group'
      ? await api.call('POST', '/groups/send', { group_id: p.room.id, ...body })
      : await api.call('POST', '/messages/send', { recipient_id: p.room.otherId, ...body });
    settle(clientId, shown({ ...reply.data, sender_username: me().username }));
  } catch (e) {
    if (e instanceof ApiError && e.status < 500 && e.status !== 429 && e.status !== 408) {
      const stateNode = p.node.querySelector('.state');
      if (stateNode) stateNode.textContent = `not sent: ${e.message}`;
      state.pending.delete(clientId);
    }
    // Otherwise it stays pending, and goes again when the connection is back.
  }
}

/** A pending message is stored: it takes its place as a message. @param {string} clientId @param {Shown} m */
function settle(clientId, m) {
  const p = state.pending.get(clientId);
  if (!p) return;
  state.pending.delete(clientId);
  p.node.remove();
  if (p.room.id === null) {
    // The first message of a direct chat made its room (the live frame may come before the reply).
    state.rooms.delete(key(p.room));
    p.room.id = m.room;
    state.rooms.set(key(p.room), p.room);
  }
  place(m);
}

/** A message of the open room, into the window once, in id order. @param {Shown} m */
function place(m) {
  if (!state.current || state.current.id !== m.room) return;
  if (state.window.some((x) => x.id === m.id)) return;
  if (!state.atNewest) {
    view.newer.hidden = false;
    return;
  }
  const nearBottom = view.log.scrollHeight - view.log.scrollTop - view.log.clientHeight < 120;
  state.window.push(m);
  state.window.sort((a, b) => a.id - b.id);
  if (state.window.length > WINDOW) {
    state.window = state.window.slice(state.window.length - WINDOW);
    state.atOldest = false;
  }
  const node = messageNode(m);
  const next = state.window.findIndex((x) => x.id === m.id) + 1;
  const after = next < state.window.length ? view.log.querySelector(`[data-id="${state.window[next].id}"]`) : null;
  const firstPending = view.log.querySelector('[data-pending]');
  view.log.insertBefore(node, after || firstPending);
  while (view.log.querySelectorAll('[data-id]').length > WINDOW) view.log.querySelector('[data-id]')?.remove();
  if (nearBottom || m.senderId === me().id) view.log.scrollTop = view.log.scrollHeight;
}

// ----- what the server says -----

/** @param {any} frame @param {boolean} [learnt] the room lists were just read again */
function onMessage(frame, learnt = false) {
  const m = shown(frame);
  const mine = m.senderId === me().id;
  if (mine && m.clientId && state.pending.has(m.clientId)) settle(m.clientId, m);
  const room = [...state.rooms.values()].find((r) => r.id === m.room);
  if (!room) {
    // A new chat or group: learn it from the lists, then take the message again.
    if (!learnt) loadRooms().then(() => onMessage(frame, true));
    else renderRooms();
    return;
  }
  room.last = m.deleted ? '' : `${m.sender}: ${m.content}`;
  room.lastAt = m.at;
  const looking = state.current === room && state.atNewest && !document.hidden;
  if (state.current === room) {
    if (m.threadRoot !== null) countReply(m);
    place(m);
    if (!mine) announce(`${m.sender}: ${m.content}`);
  }
  if (!mine && !looking) {
    // A room just read from the lists counts this message already.
    if (!learnt) {
      room.unread += 1;
      if (m.mention) room.mentions += 1;
    }
    // A muted room notifies only mentions (the server unmarks them when muted with "all").
    if (document.hidden && ((room.kind === 'direct' && !room.muted) || m.mention)) notify(room, m);
  }
  if (looking && !mine) markRead(room, m.id);
  renderRooms();
}

/** A reply arrived: its thread's first message counts it, and an open thread shows it. @param {Shown} m */
function countReply(m) {
  const root = state.window.find((x) => x.id === m.threadRoot);
  if (root) {
    root.thread = { replies: (root.thread?.replies || 0) + 1, last_reply_at: m.at };
    view.log.querySelector(`[data-id="${root.id}"]`)?.replaceWith(messageNode(root));
  }
  const t = state.thread;
  if (t && t.root === m.threadRoot && !t.log.querySelector(`[data-id="${m.id}"]`)) {
    t.log.append(messageNode(m));
    t.log.scrollTop = t.log.scrollHeight;
  }
}

/** The thread of message `id`, beside the conversation: its first message, every reply, and a box that answers in it. @param {number} id */
async function openThread(id) {
  const room = state.current;
  if (!room) return;
  closeThread();
  const thread = await api.call('GET', `/messages/${id}/thread`).catch((e) => showProblem(e));
  if (!thread || state.current !== room) return;
  const root = thread.root.id;
  const panel = el('aside', { class: 'thread', 'aria-label': 'Thread' });
  const head = el('header');
  const close = el('button', { type: 'button', 'aria-label': 'Close the thread' }, '×');
  close.addEventListener('click', () => closeThread());
  head.append(el('h3', {}, 'Thread'), close);
  const log = el('div', { role: 'log', 'aria-label': 'Thread messages', class: 'log' });
  for (const m of [thread.root, ...thread.replies]) log.append(messageNode(shown(m)));
  const form = el('form', { class: 'composer' });
  const label = el('label', { for: 'thread-composer', class: 'visually-hidden' }, 'Reply in thread');
  const box = /** @type {HTMLTextAreaElement} */ (el('textarea', { id: 'thread-composer', rows: '2', placeholder: 'Reply in thread' }));
  const send = async () => {
    const text = box.value;
    if (!text.trim()) return;
    box.value = '';
    const body = { content: text, client_id: crypto.randomUUID(), reply_to: root };
    await (room.kind === 'group'
      ? api.call('POST', '/groups/send', { group_id: room.id, ...body })
      : api.call('POST', '/messages/send', { recipient_id: room.otherId, ...body })
    ).catch((e) => showProblem(e));
  };
  box.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    } else if (event.key === 'Escape') {
      closeThread();
    }
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    send();
  });
  form.append(label, box, el('button', { type: 'submit' }, 'Reply'));
  panel.append(head, log, form);
  view.conversation.append(panel);
  state.thread = { root, log, panel };
  log.scrollTop = log.scrollHeight;
  box.focus();
}

function closeThread() {
  state.thread?.panel.remove();
  state.thread = null;
}

/** @param {Room} room @param {number} upto */
function markRead(room, upto) {
  if (room.id === null) return;
  api.call('POST', `/rooms/${room.id}/read`, { message_id: upto }).catch(() => {});
}

/** @param {Room} room @param {Shown} m */
function notify(room, m) {
  if (!('Notification' in window) || Notification.permission !== 'granted') return;
  const n = new Notification(room.kind === 'direct' ? m.sender : `${m.sender} in ${room.name}`, { body: m.content.slice(0, 200), tag: `room-${room.id}` });
  n.onclick = () => {
    window.focus();
    openRoom(room);
  };
}

/** @param {any} change */
function onChange(change) {
  const m = state.window.find((x) => x.id === change.message_id);
  if (!m) return;
  if (change.reaction) {
    const r = change.reaction;
    const mine = r.user_id === me().id;
    const found = m.reactions.find((x) => x.emoji === r.emoji);
    if (found) {
      found.count = r.count;
      if (mine) found.me = r.added;
    } else if (r.count > 0) {
      m.reactions.push({ emoji: r.emoji, count: r.count, me: mine && r.added });
    }
    m.reactions = m.reactions.filter((x) => x.count > 0);
  } else if (change.deleted) {
    m.deleted = true;
    m.content = '';
  } else if (typeof change.content === 'string') {
    m.content = change.content;
    m.edited = true;
  }
  const node = view.log.querySelector(`[data-id="${m.id}"]`);
  node?.replaceWith(messageNode(m));
}

/** @param {any} frame */
function onEvent(frame) {
  switch (frame.type) {
    case 'presence':
      if (frame.status === 'online') state.online.add(frame.user_id);
      else state.online.delete(frame.user_id);
      renderRooms();
      break;
    case 'user_typing': {
      if (frame.user_id === me().id) break;
      const who = state.typing.get(frame.room_id) || new Map();
      who.set(frame.username, Date.now() + 4000);
      state.typing.set(frame.room_id, who);
      renderTyping();
      setTimeout(renderTyping, 4100);
      break;
    }
    case 'read':
      if (frame.user_id === me().id && typeof frame.unread_count === 'number') {
        const room = [...state.rooms.values()].find((r) => r.id === frame.room_id);
        if (room) {
          room.unread = frame.unread_count;
          if (frame.unread_count === 0) room.mentions = 0;
          renderRooms();
        }
      }
      break;
    case 'member_added':
    case 'member_removed':
    case 'group_updated':
      loadRooms().then(() => {
        renderRooms();
        if (frame.type === 'group_updated' && state.current && state.current.id === frame.room_id) {
          const h = view.header.querySelector('h2');
          if (h) h.textContent = `#${frame.name}`;
          view.header.querySelector('.topic')?.remove();
          if (frame.topic) view.header.append(el('p', { class: 'topic' }, frame.topic));
        }
      });
      break;
    default:
      break;
  }
}

function renderTyping() {
  const room = state.current;
  if (!room || room.id === null) return;
  const who = state.typing.get(room.id);
  const now = Date.now();
  const names = who ? [...who].filter(([, until]) => until > now).map(([name]) => name) : [];
  view.typing.textContent = names.length === 0 ? '' : `${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} typing…`;
}

/** @param {boolean} online */
function onStatus(online) {
  state.connected = online;
  view.status.textContent = online ? 'connected' : 'reconnecting…';
  view.status.className = online ? 'status online' : 'status';
  if (online) {
    // Back: whatever could not be sent goes now (with its client_id: never twice).
    for (const clientId of state.pending.keys()) deliverPending(clientId);
    loadRooms().then(renderRooms).catch(() => {});
  }
}

/** @param {string} q */
async function showSearch(q) {
  const c = view.conversation;
  state.current = null;
  view.tray = null;
  renderRooms();
  c.replaceChildren(el('h2', {}, `Search: ${q}`));
  const results = el('ul', { class: 'results', 'aria-label': 'Search results' });
  c.append(results);
  try {
    const reply = await api.call('GET', `/search?${new URLSearchParams({ q, limit: '30' })}`);
    if (reply.results.length === 0) results.append(el('li', {}, 'Nothing found.'));
    for (const r of reply.results) {
      const room = [...state.rooms.values()].find((x) => x.id === r.room_id);
      const li = el('li');
      const open = el('button', { type: 'button', class: 'result' });
      open.append(el('span', { class: 'where' }, `${room ? room.name : `#${r.room_id}`} · ${r.sender_username || ''} · ${when(r.created_at)}`));
      const text = el('span', { class: 'body' });
      text.append(richText(r.content, me().username));
      open.append(text);
      if (room) open.addEventListener('click', () => openRoom(room, r.message_id));
      li.append(open);
      results.append(li);
    }
  } catch (e) {
    results.append(el('li', { role: 'alert' }, e instanceof Error ? e.message : String(e)));
  }
}

document.addEventListener('visibilitychange', () => {
  const room = state.current;
  if (!document.hidden && room && state.atNewest && state.window.length > 0) {
    markRead(room, state.window[state.window.length - 1].id);
    room.unread = 0;
    room.mentions = 0;
    renderRooms();
  }
});

// After a reload the cookie brings the session back.
api.restore().then((ok) => (ok ? startApp() : showSignIn('signin')));
