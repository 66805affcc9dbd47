// @ts-check
/**
 * Message text made into DOM nodes, never HTML: text nodes, links (http and https only, opened
 * without a referrer or a handle on this page) and @mentions. Nothing a message contains is
 * ever interpreted as markup.
 */

const TOKEN = /(https?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]])|(@[A-Za-z0-9_.-]+)/g;

/**
 * @param {string} text
 * @param {string} me the reader's username (their mentions are highlighted)
 * @returns {DocumentFragment}
 */
export function richText(text, me) {
  const out = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(TOKEN)) {
    const at = match.index ?? 0;
    if (at > last) out.append(document.createTextNode(text.slice(last, at)));
    const [whole, url, mention] = match;
    if (url) {
      const a = document.createElement('a');
      a.href = url;
      a.textContent = url;
      a.rel = 'noopener noreferrer nofollow';
      a.target = '_blank';
      out.append(a);
    } else if (mention) {
      const span = document.createElement('span');
      span.className = mention.slice(1).toLowerCase() === me.toLowerCase() ? 'mention me' : 'mention';
      span.textContent = mention;
      out.append(span);
    }
    last = at + whole.length;
  }
  if (last < text.length) out.append(document.createTextNode(text.slice(last)));
  return out;
}

/** Inline Markdown: `code`, **bold**, *italic* or _italic_, [text](https://...). */
const INLINE = /(`[^`\n]+`)|(\*\*[^*\n]+\*\*)|(\*[^*\s][^*\n]*\*|\b_[^_\s][^_\n]*_\b)|(\[[^\]\n]+\]\(https?:\/\/[^)\s]+\))/g;

/**
 * One line's inline Markdown as nodes; what is not Markdown goes through `richText`.
 * @param {string} text
 * @param {string} me
 * @returns {DocumentFragment}
 */
function inline(text, me) {
  const out = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    const at = match.index ?? 0;
    if (at > last) out.append(richText(text.slice(last, at), me));
    const [whole, code, bold, italic, link] = match;
    if (code) {
      out.append(el('code', {}, code.slice(1, -1)));
    } else if (bold) {
      const strong = el('strong');
      strong.append(richText(bold.slice(2, -2), me));
      out.append(strong);
    } else if (italic) {
      const em = el('em');
      em.append(richText(italic.slice(1, -1), me));
      out.append(em);
    } else if (link) {
      const split = link.indexOf('](');
      const a = /** @type {HTMLAnchorElement} */ (el('a', { rel: 'noopener noreferrer nofollow', target: '_blank' }, link.slice(1, split)));
      a.href = link.slice(split + 2, -1);
      out.append(a);
    }
    last = at + whole.length;
  }
  if (last < text.length) out.append(richText(text.slice(last), me));
  return out;
}

/**
 * A message's Markdown as DOM nodes (never HTML): fenced code as a code block, `> ` quotes,
 * `- ` and `1. ` lists, and inline styles; the rest as text, with links and mentions.
 * @param {string} text
 * @param {string} me the reader's username
 * @returns {DocumentFragment}
 */
export function markdown(text, me) {
  const out = document.createDocumentFragment();
  const lines = text.split('\n');
  /** @type {HTMLElement | null} */
  let block = null;
  let kind = '';
  /** @param {string} k @param {() => HTMLElement} make */
  const open = (k, make) => {
    if (kind !== k) {
      block = make();
      kind = k;
      out.append(block);
    }
    return /** @type {HTMLElement} */ (block);
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = line.match(/^```\s*([\w+-]*)/);
    if (fence) {
      const code = [];
      for (i += 1; i < lines.length && !lines[i].startsWith('```'); i++) code.push(lines[i]);
      const pre = el('pre', { class: 'code' });
      pre.append(el('code', fence[1] ? { 'data-lang': fence[1] } : {}, code.join('\n')));
      out.append(pre);
      kind = '';
      continue;
    }
    const quote = line.match(/^> ?(.*)$/);
    const bullet = line.match(/^\s*[-*] (.*)$/);
    const numbered = line.match(/^\s*\d+[.)] (.*)$/);
    if (quote) {
      const q = open('quote', () => el('blockquote', { class: 'md-quote' }));
      if (q.childNodes.length) q.append(document.createElement('br'));
      q.append(inline(quote[1], me));
    } else if (bullet || numbered) {
      const list = open(bullet ? 'ul' : 'ol', () => el(bullet ? 'ul' : 'ol'));
      const li = el('li');
      li.append(inline((bullet || numbered)?.[1] ?? '', me));
      list.append(li);
    } else {
      const p = open('text', () => el('div', { class: 'md-text' }));
      if (p.childNodes.length) p.append(document.createElement('br'));
      p.append(inline(line, me));
    }
  }
  return out;
}

/**
 * `HH:MM` today, else the date too.
 * @param {string} iso
 */
export function when(iso) {
  const t = new Date(iso);
  const now = new Date();
  const time = t.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return t.toDateString() === now.toDateString() ? time : `${t.toLocaleDateString()} ${time}`;
}

/**
 * An element with text (never HTML) and attributes.
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {string} [text]
 * @returns {HTMLElement}
 */
export function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}
