// Helpers shared by the playground and the operations page.

/** A value kept for this browser tab only (sessionStorage); never in localStorage or cookies. */
export const tabStore = {
  get(name) {
    try { return sessionStorage.getItem(name) ?? ''; } catch { return ''; }
  },
  set(name, value) {
    try {
      if (value) sessionStorage.setItem(name, value); else sessionStorage.removeItem(name);
    } catch { /* storage disabled: keep it in the field only */ }
  },
};

const TITLES = {
  400: 'Bad request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not found', 408: 'Request timeout',
  413: 'Request too large', 429: 'Too many requests', 500: 'Server error', 502: 'Bad gateway',
  503: 'Service unavailable', 504: 'Gateway timeout',
};

/** The OpenAI-style error body of a failed response, or a stand-in when it has none. */
export async function errorOf(response) {
  let detail = null;
  try {
    const body = await response.json();
    detail = body && typeof body.error === 'object' ? body.error : null;
  } catch { /* not JSON */ }
  return detail ?? { message: response.statusText || 'no details given' };
}

/** One readable sentence for an HTTP error: status, message, the parameter at fault, when to retry. */
export function describeHttpError(status, error, retryAfter) {
  const title = TITLES[status] ?? (status >= 500 ? 'Server error' : 'Request failed');
  let text = `${title} (${status}): ${error.message ?? 'no details given'}`;
  if (error.param) text += ` — parameter: ${error.param}`;
  if (status === 401) text += ' Check the key in the settings.';
  if (retryAfter) text += ` Retry after ${retryAfter} s.`;
  return text;
}

/** A readable sentence for an error event received inside a stream. */
export function describeStreamError(error) {
  const code = error.code ? ` (${error.code})` : '';
  return `The stream failed${code}: ${error.message ?? 'no details given'}`;
}

/** Formats a number with at most `digits` fraction digits, or an en dash for none. */
export function num(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  return Number(value).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

/** "3 s ago", "5 min ago", ... for an ISO time. */
export function ago(iso, now = Date.now()) {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** Creates an element with attributes and children (strings become text nodes, never HTML). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) node.append(c);
  return node;
}
