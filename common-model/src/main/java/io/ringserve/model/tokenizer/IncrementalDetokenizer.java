package io.ringserve.model.tokenizer;

import java.util.Arrays;

/**
 * Turns a stream of token ids into text piece by piece, for streaming responses. A token may end in
 * the middle of a multi-byte UTF-8 character (byte-level BPE splits emoji and CJK characters across
 * tokens), so the bytes of an incomplete trailing character are held back until a later token
 * completes them. Concatenating every {@link #add} result and the final {@link #flush} gives exactly
 * {@link Tokenizer#decode(int[], boolean)} of the whole sequence.
 * <p>One instance per stream; not thread-safe.
 */
public final class IncrementalDetokenizer {

    private final Tokenizer tokenizer;
    private final boolean skipSpecialTokens;
    /** Bytes of an incomplete character, at most 3, waiting for their continuation. */
    private byte[] pending = new byte[8];
    private int pendingLength;

    IncrementalDetokenizer(Tokenizer tokenizer, boolean skipSpecialTokens) {
        this.tokenizer = tokenizer;
        this.skipSpecialTokens = skipSpecialTokens;
    }

    /**
     * Adds one token and returns the text it completes, possibly empty. Ids that name no token and
     * (when skipping) special tokens add nothing, as in a full decode.
     */
    public String add(int tokenId) {
        byte[] bytes = tokenizer.bytesForDecode(tokenId, skipSpecialTokens);
        if (bytes == null || bytes.length == 0) {
            return "";
        }
        if (pendingLength + bytes.length > pending.length) {
            pending = Arrays.copyOf(pending, Math.max(pending.length * 2, pendingLength + bytes.length));
        }
        System.arraycopy(bytes, 0, pending, pendingLength, bytes.length);
        pendingLength += bytes.length;
        StringBuilder out = new StringBuilder(pendingLength);
        int done = Utf8Lossy.decode(pending, 0, pendingLength, false, out);
        // keep only the cut-off tail; whatever precedes it was decoded exactly as a full decode would
        System.arraycopy(pending, done, pending, 0, pendingLength - done);
        pendingLength -= done;
        return out.toString();
    }

    /**
     * Ends the stream: returns the held-back bytes decoded, an incomplete character becoming U+FFFD
     * as in a full decode, and resets this detokenizer for reuse.
     */
    public String flush() {
        String rest = Utf8Lossy.decode(pending, 0, pendingLength);
        pendingLength = 0;
        return rest;
    }
}
