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
