// @ts-check
/**
 * Files in the web client: uploads with progress and cancel (XMLHttpRequest: fetch cannot report
 * an upload's progress), and downloads and previews fetched with the access token (an <img> or a
 * link cannot send it) and handed to the page as blob: URLs.
 */

import { ApiError } from './api.js';
import { el } from './text.js';

/**
 * A file as messages carry it.
 * @typedef {object} Attachment
 * @property {number} id
 * @property {string} name
 * @property {number} size
 * @property {string} content_type
 * @property {number} [width]
 * @property {number} [height]
 * @property {boolean} [preview]
 */

/** `512 B`, `1.2 kB`, `3.4 MB`: as the command line writes them. @param {number} bytes */
export function humanSize(bytes) {
  if (bytes < 1e3) return `${bytes} B`;
  if (bytes < 1e6) return `${(bytes / 1e3).toFixed(1)} kB`;
  if (bytes < 1e9) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${(bytes / 1e9).toFixed(1)} GB`;
}

/**
 * Uploads `file`; `onProgress(sent, total)` as it goes. `abort()` cancels it (the server removes
 * what it had).
 * @param {import('./api.js').Api} api
 * @param {File} file
 * @param {(sent: number, total: number) => void} onProgress
 * @returns {{done: Promise<Attachment>, abort: () => void}}
 */
export function upload(api, file, onProgress) {
  const xhr = new XMLHttpRequest();
  const done = (async () => {
    const token = await api.freshToken();
    return new Promise((resolve, reject) => {
      xhr.open('POST', `/files?name=${encodeURIComponent(file.name || 'pasted')}`);
      xhr.setRequestHeader('Authorization', `Bearer ${token}`);
      xhr.responseType = 'json';
      xhr.upload.onprogress = (event) => onProgress(event.loaded, event.total || file.size);
      xhr.onload = () => {
        const reply = xhr.response || {};
        if (xhr.status >= 200 && xhr.status < 300) resolve(reply);
        else reject(new ApiError(xhr.status, typeof reply.detail === 'string' ? reply.detail : `Upload failed (${xhr.status})`));
      };
      xhr.onerror = () => reject(new ApiError(0, 'The upload was cut off: check the connection'));
      xhr.onabort = () => reject(new ApiError(0, 'Cancelled'));
      xhr.send(file);
    });
  })();
  return { done, abort: () => xhr.abort() };
}

/** Blob URLs of previews already fetched, by file id. @type {Map<number, Promise<string>>} */
const previews = new Map();

/**
 * The bytes at `path` (with the token) as a blob: URL.
 * @param {import('./api.js').Api} api
 * @param {string} path
 */
async function blobUrl(api, path) {
  const token = await api.freshToken();
  const response = await fetch(path, { headers: { Authorization: `Bearer ${token}` }, credentials: 'same-origin' });
  if (!response.ok) throw new ApiError(response.status, response.status === 404 ? 'That file is gone' : `Download failed (${response.status})`);
  return URL.createObjectURL(await response.blob());
}

/**
 * Saves a file: fetched with the token, then handed to the browser as a download under its name.
 * @param {import('./api.js').Api} api
 * @param {Attachment} file
 */
export async function download(api, file) {
  const url = await blobUrl(api, `/files/${file.id}`);
  const link = /** @type {HTMLAnchorElement} */ (el('a', { href: url, download: file.name }));
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/**
 * How a message shows its files: images from their preview (a click saves the original), other
 * files as a button with name and size.
 * @param {import('./api.js').Api} api
 * @param {Attachment[]} files
 * @param {(e: unknown) => void} onProblem
 */
export function attachmentsNode(api, files, onProblem) {
  const list = el('ul', { class: 'attachments' });
  for (const file of files) {
    const item = el('li');
    const save = () => download(api, file).catch(onProblem);
    if (file.preview) {
      const label = `${file.name} (${humanSize(file.size)}${file.width ? `, ${file.width}×${file.height}` : ''})`;
      const button = el('button', { type: 'button', class: 'image', title: `Save ${label}`, 'aria-label': `Save image ${label}` });
      const img = /** @type {HTMLImageElement} */ (el('img', { alt: file.name }));
      if (file.width && file.height) {
        const scale = Math.min(1, 320 / Math.max(file.width, file.height));
        img.width = Math.round(file.width * scale);
        img.height = Math.round(file.height * scale);
      }
      let url = previews.get(file.id);
      if (!url) {
        url = blobUrl(api, `/files/${file.id}/preview`);
        previews.set(file.id, url);
      }
      url.then((src) => { img.src = src; }).catch(() => previews.delete(file.id));
      button.append(img);
      button.addEventListener('click', save);
      item.append(button);
    } else {
      const button = el('button', { type: 'button', class: 'file', title: 'Download' }, `${file.name} (${humanSize(file.size)})`);
      button.setAttribute('aria-label', `Download ${file.name}, ${humanSize(file.size)}`);
      button.addEventListener('click', save);
      item.append(button);
    }
    list.append(item);
  }
  return list;
}

/**
 * The files chosen for the next message: each uploads at once, shows its progress, and can be
 * taken off (cancelling its upload).
 */
export class Tray {
  /** @param {import('./api.js').Api} api @param {(e: unknown) => void} onProblem */
  constructor(api, onProblem) {
    this.api = api;
    this.onProblem = onProblem;
    this.node = el('ul', { class: 'tray', 'aria-label': 'Files to send' });
    /** @type {{done: Promise<Attachment>, abort: () => void, item: HTMLElement}[]} */
    this.uploads = [];
  }

  /** @param {Iterable<File>} files */
  add(files) {
    for (const file of files) {
      const item = el('li', { class: 'upload' });
      const bar = /** @type {HTMLProgressElement} */ (el('progress', { max: String(file.size || 1), value: '0' }));
      bar.setAttribute('aria-label', `Uploading ${file.name}`);
      const cancel = el('button', { type: 'button', 'aria-label': `Remove ${file.name}` }, '×');
      item.append(el('span', {}, `${file.name || 'pasted'} (${humanSize(file.size)})`), bar, cancel);
      const started = upload(this.api, file, (sent) => { bar.value = sent; });
      const entry = { ...started, item };
      started.done.then(() => {
        bar.value = bar.max;
        item.classList.add('uploaded');
        bar.setAttribute('aria-label', `${file.name} uploaded`);
      }, (e) => {
        this.remove(entry);
        if (!(e instanceof ApiError && e.message === 'Cancelled')) this.onProblem(e);
      });
      cancel.addEventListener('click', () => {
        entry.abort();
        this.remove(entry);
      });
      this.uploads.push(entry);
      this.node.append(item);
    }
  }

  /** @param {{item: HTMLElement}} entry */
  remove(entry) {
    this.uploads = this.uploads.filter((u) => u !== entry);
    entry.item.remove();
  }

  get empty() {
    return this.uploads.length === 0;
  }

  /** Every file's id once all are up (a failed one is left out); the tray is emptied. */
  async take() {
    const taken = this.uploads;
    this.uploads = [];
    this.node.replaceChildren();
    const settled = await Promise.allSettled(taken.map((u) => u.done));
    return settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  }
}
