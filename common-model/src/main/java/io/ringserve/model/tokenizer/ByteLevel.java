package io.ringserve.model.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The GPT-2 byte-level alphabet: every byte value is shown as one printable character so that
 * byte strings can live in a string-keyed vocabulary. Printable Latin-1 bytes map to themselves,
 * the remaining 68 bytes map to U+0100 and up, in byte order.
 */
final class ByteLevel {

    /** Character shown for each byte value. */
    private static final char[] BYTE_TO_CHAR = new char[256];
    /** Byte value for each alphabet character, -1 for characters outside the alphabet. */
    private static final int[] CHAR_TO_BYTE = new int[0x100 + 68];

    static {
        Arrays.fill(CHAR_TO_BYTE, -1);
        int extra = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = printable ? (char) b : (char) (0x100 + extra++);
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = b;
        }
    }

    private ByteLevel() {
    }

    /** The alphabet character for one byte. */
    static char charOf(int b) {
        return BYTE_TO_CHAR[b & 0xFF];
    }

    /** The byte for one alphabet character, or -1 if {@code c} is not in the alphabet. */
    static int byteOf(char c) {
        return c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
    }

    /** Encodes {@code text} as UTF-8 and spells each byte with its alphabet character. */
    static String encode(String text) {
        int n = text.length();
        char[] out = new char[n * 3];
        int o = 0;
        for (int i = 0; i < n; i++) {
            char c = text.charAt(i);
            if (c < 0x80) {
                out[o++] = BYTE_TO_CHAR[c];
                continue;
            }
            int cp = c;
            if (Character.isHighSurrogate(c) && i + 1 < n && Character.isLowSurrogate(text.charAt(i + 1))) {
                cp = Character.toCodePoint(c, text.charAt(++i));
            } else if (Character.isSurrogate(c)) {
                cp = '?'; // a lone surrogate has no UTF-8 form; String.getBytes does the same
            }
            if (out.length - o < 4) {
                out = Arrays.copyOf(out, out.length * 2 + 4);
            }
            if (cp < 0x80) {
                out[o++] = BYTE_TO_CHAR[cp];
            } else if (cp < 0x800) {
                out[o++] = BYTE_TO_CHAR[0xC0 | (cp >> 6)];
                out[o++] = BYTE_TO_CHAR[0x80 | (cp & 0x3F)];
            } else if (cp < 0x10000) {
                out[o++] = BYTE_TO_CHAR[0xE0 | (cp >> 12)];
                out[o++] = BYTE_TO_CHAR[0x80 | ((cp >> 6) & 0x3F)];
                out[o++] = BYTE_TO_CHAR[0x80 | (cp & 0x3F)];
            } else {
                out[o++] = BYTE_TO_CHAR[0xF0 | (cp >> 18)];
                out[o++] = BYTE_TO_CHAR[0x80 | ((cp >> 12) & 0x3F)];
                out[o++] = BYTE_TO_CHAR[0x80 | ((cp >> 6) & 0x3F)];
                out[o++] = BYTE_TO_CHAR[0x80 | (cp & 0x3F)];
            }
        }
        return new String(out, 0, o);
    }

    /**
     * The bytes a token string stands for, as the ByteLevel decoder computes them: each character
     * mapped back to its byte, or, if any character is outside the alphabet (typically an added token
     * such as one containing a plain space), the token's own UTF-8 text.
     */
    static byte[] decodeToken(String token) {
        byte[] out = new byte[token.length()];
        for (int i = 0; i < token.length(); i++) {
            int b = byteOf(token.charAt(i));
            if (b < 0) {
                return token.getBytes(StandardCharsets.UTF_8);
            }
            out[i] = (byte) b;
        }
        return out;
    }
}
