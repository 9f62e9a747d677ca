// Server-Sent Events over fetch: unlike EventSource, fetch can send an Authorization header and a POST body,
// and an AbortController cancels it.

/**
 * Yields {event, data} for each event of a text/event-stream response body; comment lines (": keep-alive")
 * are skipped. Leaving the loop early cancels the body.
 */
export async function* readEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      // a "\r" at the end may be the first half of "\r\n": keep it for the next chunk
      const keep = buffer.endsWith('\r') ? 1 : 0;
      let text = buffer.slice(0, buffer.length - keep).replace(/\r\n?/g, '\n');
      let at;
      while ((at = text.indexOf('\n\n')) >= 0) {
        const event = parse(text.slice(0, at));
        text = text.slice(at + 2);
        if (event) yield event;
      }
      buffer = text + (keep ? '\r' : '');
    }
    const last = parse(buffer.replace(/\r\n?/g, '\n'));
    if (last) yield last;
  } finally {
    reader.cancel().catch(() => {});
  }
}

function parse(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') event = value;
  }
  return data.length ? { event, data: data.join('\n') } : null;
}
