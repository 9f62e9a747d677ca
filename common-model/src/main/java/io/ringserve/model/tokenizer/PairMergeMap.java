package io.ringserve.model.tokenizer;

/**
 * Open-addressing hash map from a pair of token ids to its merge (rank and resulting id), with
 * primitive keys so the hot merge loop neither boxes nor chases pointers.
 */
final class PairMergeMap {

    /** Returned by {@link #get} when the pair has no merge. */
    static final long MISSING = -1L;
    private static final long EMPTY = -1L; // no pair of non-negative ids packs to -1

    private long[] keys;
    private long[] values;
    private int size;

    PairMergeMap(int expected) {
        int capacity = Integer.highestOneBit(Math.max(16, expected * 2 - 1)) << 1;
        keys = new long[capacity];
        values = new long[capacity];
        java.util.Arrays.fill(keys, EMPTY);
    }

    static long key(int left, int right) {
        return ((long) left << 32) | (right & 0xFFFFFFFFL);
    }

    static int rank(long merge) {
        return (int) (merge >>> 32);
    }

    static int mergedId(long merge) {
        return (int) merge;
    }

    /** Sets the merge of (left, right); a later duplicate pair replaces an earlier one. */
    void put(int left, int right, int rank, int mergedId) {
        if ((size + 1) * 2 > keys.length) {
            grow();
        }
        long key = key(left, right);
        int mask = keys.length - 1;
        int slot = slot(key, mask);
        while (keys[slot] != EMPTY && keys[slot] != key) {
            slot = (slot + 1) & mask;
        }
        if (keys[slot] == EMPTY) {
            size++;
        }
        keys[slot] = key;
        values[slot] = ((long) rank << 32) | (mergedId & 0xFFFFFFFFL);
    }

    /** The packed merge of (left, right) (see {@link #rank}, {@link #mergedId}), or {@link #MISSING}. */
    long get(int left, int right) {
        long key = key(left, right);
        int mask = keys.length - 1;
        int slot = slot(key, mask);
        while (true) {
            long k = keys[slot];
            if (k == key) {
                return values[slot];
            }
            if (k == EMPTY) {
                return MISSING;
            }
            slot = (slot + 1) & mask;
        }
    }

    int size() {
        return size;
    }

    private static int slot(long key, int mask) {
        // both halves must reach the low bits, or pairs sharing a right id would collide
        long h = key ^ (key >>> 33);
        h *= 0xFF51AFD7ED558CCDL;
        h ^= h >>> 33;
        return (int) h & mask;
    }

    private void grow() {
        long[] oldKeys = keys;
        long[] oldValues = values;
        keys = new long[oldKeys.length * 2];
        values = new long[oldKeys.length * 2];
        java.util.Arrays.fill(keys, EMPTY);
        int mask = keys.length - 1;
        for (int i = 0; i < oldKeys.length; i++) {
            if (oldKeys[i] != EMPTY) {
                int slot = slot(oldKeys[i], mask);
                while (keys[slot] != EMPTY) {
                    slot = (slot + 1) & mask;
                }
                keys[slot] = oldKeys[i];
                values[slot] = oldValues[i];
            }
        }
    }
}
