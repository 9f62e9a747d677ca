package io.ringserve.model.tokenizer;

/**
 * UTF-8 decoding that replaces ill-formed input exactly as Rust's {@code String::from_utf8_lossy}
 * does: each maximal subpart of an ill-formed sequence becomes one U+FFFD (the Unicode
 * "substitution of maximal subparts" practice). Written by hand rather than with a
 * {@link java.nio.charset.CharsetDecoder} so the replacement count is guaranteed, and so a caller
 * can stop before an incomplete sequence at the end of the input and resume later.
 */
final class Utf8Lossy {

    static final char REPLACEMENT = '\uFFFD';

    private Utf8Lossy() {
    }

    /** Decodes all of {@code bytes[from, to)}; an incomplete sequence at the end becomes U+FFFD. */
    static String decode(byte[] bytes, int from, int to) {
        StringBuilder out = new StringBuilder(to - from);
        decode(bytes, from, to, true, out);
        return out.toString();
    }

    /**
     * Decodes {@code bytes[from, to)} into {@code out}.
     *
     * @param endOfInput if false, a sequence that is well-formed so far but cut off by {@code to}
     *                   is left undecoded, as later bytes may complete it
     * @return the index just after the last decoded byte ({@code to} unless bytes were left)
     */
    static int decode(byte[] bytes, int from, int to, boolean endOfInput, StringBuilder out) {
        int i = from;
        outer:
        while (i < to) {
            int lead = bytes[i] & 0xFF;
            if (lead < 0x80) {
                out.append((char) lead);
                i++;
                continue;
            }
            int need;
            int lo = 0x80;
            int hi = 0xBF;
            int cp;
            if (lead >= 0xC2 && lead <= 0xDF) {
                need = 1;
                cp = lead & 0x1F;
            } else if (lead >= 0xE0 && lead <= 0xEF) {
                need = 2;
                cp = lead & 0x0F;
                if (lead == 0xE0) {
                    lo = 0xA0; // rejects overlong forms
                } else if (lead == 0xED) {
                    hi = 0x9F; // rejects surrogates
                }
            } else if (lead >= 0xF0 && lead <= 0xF4) {
                need = 3;
                cp = lead & 0x07;
                if (lead == 0xF0) {
                    lo = 0x90; // rejects overlong forms
                } else if (lead == 0xF4) {
                    hi = 0x8F; // rejects code points above U+10FFFF
                }
            } else {
                out.append(REPLACEMENT);
                i++;
                continue;
            }
            for (int k = 1; k <= need; k++) {
                if (i + k >= to) {
                    if (!endOfInput) {
                        return i;
                    }
                    out.append(REPLACEMENT);
                    i = to;
                    continue outer;
                }
                int c = bytes[i + k] & 0xFF;
                int min = k == 1 ? lo : 0x80;
                int max = k == 1 ? hi : 0xBF;
                if (c < min || c > max) {
                    out.append(REPLACEMENT);
                    i += k;
                    continue outer;
                }
                cp = (cp << 6) | (c & 0x3F);
            }
            out.appendCodePoint(cp);
            i += need + 1;
        }
        return i;
    }
}
