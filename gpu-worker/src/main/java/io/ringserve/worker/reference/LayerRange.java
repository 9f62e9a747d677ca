package io.ringserve.worker.reference;

/**
 * Decoder layers {@code [start, end)} of a model with {@code total} layers: what one shard (a pipeline stage)
 * holds. The first shard ({@code start == 0}) also holds the word embeddings; the last ({@code end == total})
 * holds the final norm and the lm_head. A whole-model worker holds {@code [0, total)}.
 */
public record LayerRange(int start, int end, int total) {
    public LayerRange {
        if (total < 1 || start < 0 || start >= end || end > total) {
            throw new IllegalArgumentException("layer range " + start + "-" + end + " must satisfy 0 <= start < end <= " + total
                    + " (the model's num_hidden_layers)");
        }
    }

    public static LayerRange all(int total) {
        return new LayerRange(0, total, total);
    }

    /**
     * Parses {@code a-b}, end exclusive ({@code 0-10} is layers 0..9), of a model with {@code total} layers.
     *
     * @throws IllegalArgumentException naming the text and what is wrong with it
     */
    public static LayerRange parse(String text, int total) {
        String s = text.strip();
        int dash = s.indexOf('-');
        if (dash <= 0 || dash == s.length() - 1) {
            throw new IllegalArgumentException("'" + text + "' is not a layer range; write start-end, end exclusive, e.g. 0-" + total);
        }
        int start;
        int end;
        try {
            start = Integer.parseInt(s.substring(0, dash).strip());
            end = Integer.parseInt(s.substring(dash + 1).strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + text + "' is not a layer range; write start-end, end exclusive, e.g. 0-" + total);
        }
        return new LayerRange(start, end, total);
    }

    /** Layers held. */
    public int count() {
        return end - start;
    }

    /** Holds layer 0 and the word embeddings. */
    public boolean isFirst() {
        return start == 0;
    }

    /** Holds the last layer, the final norm and the lm_head. */
    public boolean isLast() {
        return end == total;
    }

    public boolean isAll() {
        return isFirst() && isLast();
    }

    public boolean contains(int layer) {
        return layer >= start && layer < end;
    }

    /** E.g. {@code 0-10 of 20}: layers 0..9 of a 20-layer model. */
    @Override
    public String toString() {
        return start + "-" + end + " of " + total;
    }
}
