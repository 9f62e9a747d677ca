// A small, safe Markdown renderer for model answers. The source is HTML-escaped first, so nothing in it can
// become markup except what the rules below produce: headings, paragraphs, emphasis, strikethrough, inline
// code, fenced code blocks, lists, block quotes, rules and links with http, https or mailto targets.
// Unterminated constructs (a stream cut mid-way) render as far as they go.

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML content and double-quoted attributes. */
export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

const SAFE_SCHEMES = new Set(['http', 'https', 'mailto']);

/**
 * The link target if it is safe: http, https, mailto, or a relative URL. Browsers drop tabs, newlines and
 * leading control characters from URLs, so they are dropped here before the scheme is read.
 */
export function safeUrl(url) {
  const cleaned = String(url).replace(/[\u0000-\u0020\u007f]+/g, '');
  if (cleaned === '') return null;
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(cleaned);
  if (scheme) return SAFE_SCHEMES.has(scheme[1].toLowerCase()) ? cleaned : null;
  // no scheme: relative, but "\" and "//" could still name another scheme or host in some parsers
  return /^[\\/]{2}/.test(cleaned) || cleaned.includes('\\') ? null : cleaned;
}

// placeholders for finished inline code spans and links; NUL never survives in the source
const HOLE = '\u0000';

/** Inline rules on one line or paragraph of raw (unescaped) text; returns HTML. */
export function renderInline(raw) {
  const held = [];
  const hold = (html) => `${HOLE}${held.push(html) - 1}${HOLE}`;
  let text = String(raw).replace(/\u0000/g, '');
  // code spans first: nothing inside them is Markdown
  text = text.replace(/(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/g, (_, ticks, code) => hold(`<code>${escapeHtml(code.trim() === '' ? code : code.replace(/^ (.*) $/s, '$1'))}</code>`));
  // links [text](url "title"): the text keeps its inline rules, the target must be safe
  text = text.replace(/\[([^\]\n]+)\]\(\s*<?((?:[^()\s<>]|\([^()\s<>]*\))*)>?(?:\s+"[^"\n]*")?\s*\)/g, (whole, label, url) => {
    const target = safeUrl(url);
    const inner = emphasis(escapeHtml(label));
    return target === null ? hold(inner)
      : hold(`<a href="${escapeHtml(target)}" rel="noopener noreferrer nofollow" target="_blank">${inner}</a>`);
  });
  let html = emphasis(escapeHtml(text));
  html = html.replace(new RegExp(`${HOLE}(\\d+)${HOLE}`, 'g'), (_, i) => held[Number(i)]);
  return html;
}

/** Bold, italic and strikethrough on already-escaped text. */
function emphasis(html) {
  return html
    .replace(/\*\*(?=\S)([\s\S]*?\S)\*\*/g, '<strong>$1</strong>')
    .replace(/__(?=\S)([\s\S]*?\S)__(?![A-Za-z0-9])/g, '<strong>$1</strong>')
    .replace(/(^|[^*])\*(?=[^\s*])([^*\n]*?[^\s*])\*(?!\*)/g, '$1<em>$2</em>')
    .replace(/(^|[^A-Za-z0-9_])_(?=[^\s_])([^_\n]*?[^\s_])_(?![A-Za-z0-9_])/g, '$1<em>$2</em>')
    .replace(/~~(?=\S)([\s\S]*?\S)~~/g, '<del>$1</del>');
}

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)[^\n]*$/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^ {0,3}([-*_])(?:\s*\1){2,}\s*$/;
const BULLET = /^(\s*)[-*+]\s+(.*)$/;
const ORDERED = /^(\s*)(\d{1,9})[.)]\s+(.*)$/;
const QUOTE = /^ {0,3}>\s?(.*)$/;

/** Renders Markdown source to HTML. */
export function renderMarkdown(source) {
  const lines = String(source ?? '').replace(/\r\n?/g, '\n').split('\n');
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    let m;
    if ((m = FENCE.exec(line))) {
      const fence = m[1];
      const lang = m[2];
      const body = [];
      i++;
      while (i < lines.length && !new RegExp(`^ {0,3}${fence[0]}{${fence.length},}\\s*$`).test(lines[i])) {
        body.push(lines[i]);
        i++;
      }
      i++; // the closing fence, or past the end
      const cls = lang ? ` class="language-${escapeHtml(lang)}"` : '';
      const label = lang ? ` data-lang="${escapeHtml(lang)}"` : '';
      out.push(`<pre${label}><code${cls}>${escapeHtml(body.join('\n'))}</code></pre>`);
    } else if (line.trim() === '') {
      i++;
    } else if ((m = HEADING.exec(line))) {
      const level = m[1].length;
      out.push(`<h${level}>${renderInline(m[2])}</h${level}>`);
      i++;
    } else if (RULE.test(line)) {
      out.push('<hr>');
      i++;
    } else if (QUOTE.test(line)) {
      const body = [];
      while (i < lines.length && (m = QUOTE.exec(lines[i]))) {
        body.push(m[1]);
        i++;
      }
      out.push(`<blockquote>${renderMarkdown(body.join('\n'))}</blockquote>`);
    } else if (BULLET.test(line) || ORDERED.test(line)) {
      i = list(lines, i, out);
    } else {
      const para = [];
      while (i < lines.length && lines[i].trim() !== '' && !FENCE.test(lines[i]) && !HEADING.test(lines[i])
          && !RULE.test(lines[i]) && !QUOTE.test(lines[i]) && !BULLET.test(lines[i]) && !ORDERED.test(lines[i])) {
        para.push(lines[i].trim());
        i++;
      }
      out.push(`<p>${para.map(renderInline).join('<br>')}</p>`);
    }
  }
  return out.join('\n');
}

/** A list starting at lines[i] (nested by indentation); returns the index after it. */
function list(lines, i, out) {
  const first = BULLET.exec(lines[i]) || ORDERED.exec(lines[i]);
  const indent = first[1].length;
  const ordered = !BULLET.test(lines[i]);
  const start = ordered ? Number(ORDERED.exec(lines[i])[2]) : 1;
  out.push(ordered ? (start === 1 ? '<ol>' : `<ol start="${start}">`) : '<ul>');
  let open = false;
  while (i < lines.length) {
    const line = lines[i];
    const b = BULLET.exec(line);
    const o = ORDERED.exec(line);
    const item = b || o;
    if (item && item[1].length === indent && Boolean(o) === ordered) {
      if (open) out.push('</li>');
      out.push(`<li>${renderInline(o ? o[3] : b[2])}`);
      open = true;
      i++;
    } else if (item && item[1].length > indent) {
      i = list(lines, i, out);
    } else if (!item && line.trim() !== '' && /^\s+/.test(line) && open) {
      out.push(`<br>${renderInline(line.trim())}`); // a continuation line of the item
      i++;
    } else {
      break;
    }
  }
  if (open) out.push('</li>');
  out.push(ordered ? '</ol>' : '</ul>');
  return i;
}
