package io.ringserve.model.tokenizer;

import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import tools.jackson.databind.JsonNode;

/**
 * The BPE {@code model}: splits a word into single-character symbols, then repeatedly applies the
 * lowest-ranked merge among adjacent symbol pairs (leftmost first on ties) until none applies.
 * Results are cached per word because natural text repeats words heavily.
 */
final class BpeModel {

    /** Words longer than this are not cached: they are rare and would crowd out common ones. */
    private static final int MAX_CACHED_WORD_LENGTH = 256;
    /** The cache is emptied when it reaches this many words, which bounds its memory. */
    private static final int MAX_CACHED_WORDS = 200_000;
    /** Code points below this are looked up in an array when building initial symbols. */
    private static final int DIRECT_CHARS = 0x800;

    private final Map<String, Integer> vocab;
    private final String[] idToToken;
    private final PairMergeMap merges;
    private final String continuingSubwordPrefix;
    private final String endOfWordSuffix;
    private final int unkId;
    private final boolean fuseUnk;
    private final boolean byteFallback;
    private final boolean ignoreMerges;
    /** Id of the single-character token for each small code point, or -1. */
    private final int[] directCharIds;
    /** Id of single-code-point tokens beyond {@link #DIRECT_CHARS}. */
    private final Map<Integer, Integer> otherCharIds;
    private final ConcurrentHashMap<String, int[]> cache = new ConcurrentHashMap<>();

    private BpeModel(Map<String, Integer> vocab, String[] idToToken, PairMergeMap merges, String prefix,
                     String suffix, int unkId, boolean fuseUnk, boolean byteFallback, boolean ignoreMerges) {
        this.vocab = vocab;
        this.idToToken = idToToken;
        this.merges = merges;
        this.continuingSubwordPrefix = prefix;
        this.endOfWordSuffix = suffix;
        this.unkId = unkId;
        this.fuseUnk = fuseUnk;
        this.byteFallback = byteFallback;
        this.ignoreMerges = ignoreMerges;
        this.directCharIds = new int[DIRECT_CHARS];
        java.util.Arrays.fill(directCharIds, -1);
        this.otherCharIds = new HashMap<>();
        vocab.forEach((token, id) -> {
            if (token.codePointCount(0, token.length()) == 1) {
                int cp = token.codePointAt(0);
                if (cp < DIRECT_CHARS) {
                    directCharIds[cp] = id;
                } else {
                    otherCharIds.put(cp, id);
                }
            }
        });
    }

    /** Builds the model from the {@code model} object of a tokenizer file. */
    static BpeModel parse(JsonCursor json) {
        JsonCursor typeJson = json.optional("type");
        String type = typeJson == null ? "BPE" : typeJson.string();
        if (!type.equals("BPE")) {
            throw typeJson.error("unsupported model type \"" + type + "\" (supported: BPE)");
        }
        String prefix = json.optionalString("continuing_subword_prefix");
        String suffix = json.optionalString("end_of_word_suffix");

        JsonCursor vocabJson = json.required("vocab");
        if (!vocabJson.isObject()) {
            throw vocabJson.error("expected an object mapping token to id");
        }
        Map<String, Integer> vocab = HashMap.newHashMap(vocabJson.node().size());
        int maxId = -1;
        for (Map.Entry<String, JsonNode> e : vocabJson.node().properties()) {
            JsonNode v = e.getValue();
            if (!v.isIntegralNumber() || !v.canConvertToInt() || v.intValue() < 0) {
                throw new JsonCursor(vocabJson.file(), vocabJson.path() + "." + e.getKey(), v)
                        .error("expected a non-negative integer id but found " + v);
            }
            vocab.put(e.getKey(), v.intValue());
            maxId = Math.max(maxId, v.intValue());
        }
        String[] idToToken = new String[maxId + 1];
        vocab.forEach((token, id) -> idToToken[id] = token);

        JsonCursor mergesJson = json.optional("merges");
        JsonNode mergesNode = mergesJson == null ? null : mergesJson.node();
        if (mergesNode != null && !mergesNode.isArray()) {
            throw mergesJson.error("expected an array of merges");
        }
        int mergeCount = mergesNode == null ? 0 : mergesNode.size();
        PairMergeMap merges = new PairMergeMap(mergeCount);
        for (int rank = 0; rank < mergeCount; rank++) {
            JsonNode m = mergesNode.get(rank);
            String left;
            String right;
            // merges are either "left right" strings (older files) or ["left", "right"] pairs
            if (m.isString()) {
                String s = m.stringValue();
                int space = s.indexOf(' ');
                if (space < 0) {
                    throw mergeError(mergesJson, rank, "expected \"left right\" but found \"" + s + "\"");
                }
                left = s.substring(0, space);
                right = s.substring(space + 1);
            } else if (m.isArray() && m.size() == 2 && m.get(0).isString() && m.get(1).isString()) {
                left = m.get(0).stringValue();
                right = m.get(1).stringValue();
            } else {
                throw mergeError(mergesJson, rank, "expected a \"left right\" string or a [left, right] pair but found " + m);
            }
            Integer leftId = vocab.get(left);
            Integer rightId = vocab.get(right);
            String mergedToken = left + (prefix != null && right.startsWith(prefix)
                    ? right.substring(prefix.length()) : right);
            Integer mergedId = vocab.get(mergedToken);
            if (leftId == null || rightId == null || mergedId == null) {
                String missing = leftId == null ? left : rightId == null ? right : mergedToken;
                throw mergeError(mergesJson, rank, "token \"" + missing + "\" is not in model.vocab");
            }
            merges.put(leftId, rightId, rank, mergedId);
        }

        int unkId = -1;
        String unk = json.optionalString("unk_token");
        if (unk != null) {
            Integer id = vocab.get(unk);
            if (id == null) {
                throw json.required("unk_token").error("unk token \"" + unk + "\" is not in model.vocab");
            }
            unkId = id;
        }
        return new BpeModel(vocab, idToToken, merges, prefix, suffix, unkId, json.bool("fuse_unk", false),
                json.bool("byte_fallback", false), json.bool("ignore_merges", false));
    }

    private static IllegalArgumentException mergeError(JsonCursor merges, int rank, String problem) {
        return new JsonCursor(merges.file(), merges.path() + "[" + rank + "]", null).error(problem);
    }

    Map<String, Integer> vocab() {
        return vocab;
    }

    /** Token strings by id; null where the vocabulary has a gap. */
    String[] idToToken() {
        return idToToken;
    }

    int mergeCount() {
        return merges.size();
    }

    /** Appends the ids of {@code word} to {@code out}. */
    void tokenize(String word, IntArrayBuilder out) {
        if (word.isEmpty()) {
            return;
        }
        if (ignoreMerges) {
            Integer whole = vocab.get(word);
            if (whole != null) {
                out.add(whole);
                return;
            }
        }
        int[] ids = cache.get(word);
        if (ids == null) {
            ids = mergeWord(word);
            if (word.length() <= MAX_CACHED_WORD_LENGTH) {
                if (cache.size() >= MAX_CACHED_WORDS) {
                    cache.clear();
                }
                cache.put(word, ids);
            }
        }
        out.addAll(ids);
    }

    /** Initial symbols (one per character, with unknown-character handling) then the merge loop. */
    private int[] mergeWord(String word) {
        IntArrayBuilder symbols = new IntArrayBuilder(word.length());
        int pendingUnk = -1; // an unknown-character run waiting to be emitted (fuse_unk)
        int n = word.length();
        for (int i = 0; i < n; ) {
            int cp = word.codePointAt(i);
            int end = i + Character.charCount(cp);
            int id = symbolId(word, cp, i, end);
            if (id >= 0) {
                if (pendingUnk >= 0) {
                    symbols.add(pendingUnk);
                    pendingUnk = -1;
                }
                symbols.add(id);
            } else if (byteFallback && addByteFallback(symbolText(word, i, end), symbols, pendingUnk)) {
                pendingUnk = -1;
            } else if (unkId >= 0) {
                if (pendingUnk >= 0 && !fuseUnk) {
                    symbols.add(pendingUnk);
                }
                pendingUnk = unkId;
            }
            // with neither unk nor byte fallback an unknown character is dropped, as the reference does
            i = end;
        }
        if (pendingUnk >= 0) {
            symbols.add(pendingUnk);
        }
        return merge(symbols.toArray());
    }

    private int symbolId(String word, int cp, int start, int end) {
        if (continuingSubwordPrefix == null && endOfWordSuffix == null) {
            if (cp < DIRECT_CHARS) {
                return directCharIds[cp];
            }
            Integer id = otherCharIds.get(cp);
            return id == null ? -1 : id;
        }
        Integer id = vocab.get(symbolText(word, start, end));
        return id == null ? -1 : id;
    }

    private String symbolText(String word, int start, int end) {
        String s = word.substring(start, end);
        if (continuingSubwordPrefix != null && start > 0) {
            s = continuingSubwordPrefix + s;
        }
        if (endOfWordSuffix != null && end == word.length()) {
            s = s + endOfWordSuffix;
        }
        return s;
    }

    /** Adds {@code <0xXX>} tokens for each UTF-8 byte of {@code text} if all exist. */
    private boolean addByteFallback(String text, IntArrayBuilder symbols, int pendingUnk) {
        byte[] bytes = text.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        int[] ids = new int[bytes.length];
        for (int k = 0; k < bytes.length; k++) {
            Integer id = vocab.get(String.format("<0x%02X>", bytes[k] & 0xFF));
            if (id == null) {
                return false;
            }
            ids[k] = id;
        }
        if (pendingUnk >= 0) {
            symbols.add(pendingUnk);
        }
        symbols.addAll(ids);
        return true;
    }

    /**
     * Applies merges with a min-heap of candidate pairs keyed by (rank, position), over a linked list
     * of symbols: O(n log n) per word, where rescanning all pairs after each merge would be O(n^2)
     * on long words such as CJK runs.
     */
    private int[] merge(int[] id) {
        int n = id.length;
        if (n < 2) {
            return id;
        }
        int[] prev = new int[n];
        int[] next = new int[n];
        for (int i = 0; i < n; i++) {
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        LongMinHeap heap = new LongMinHeap(n);
        for (int i = 0; i + 1 < n; i++) {
            queue(heap, merges.get(id[i], id[i + 1]), i);
        }
        int alive = n;
        while (!heap.isEmpty()) {
            long top = heap.pop();
            int i = (int) top;
            int rank = (int) (top >>> 32);
            if (id[i] < 0 || next[i] < 0) {
                continue; // this symbol was merged away, or has nothing to its right any more
            }
            int j = next[i];
            long m = merges.get(id[i], id[j]);
            if (m == PairMergeMap.MISSING || PairMergeMap.rank(m) != rank) {
                continue; // stale entry: a neighbour changed since it was queued
            }
            id[i] = PairMergeMap.mergedId(m);
            id[j] = -1;
            next[i] = next[j];
            if (next[j] >= 0) {
                prev[next[j]] = i;
            }
            alive--;
            if (prev[i] >= 0) {
                queue(heap, merges.get(id[prev[i]], id[i]), prev[i]);
            }
            if (next[i] >= 0) {
                queue(heap, merges.get(id[i], id[next[i]]), i);
            }
        }
        int[] out = new int[alive];
        int k = 0;
        for (int i = 0; i >= 0; i = next[i]) {
            out[k++] = id[i];
        }
        return out;
    }

    /** Queues a candidate merge at {@code position}, ordered by rank then position (leftmost first). */
    private static void queue(LongMinHeap heap, long merge, int position) {
        if (merge != PairMergeMap.MISSING) {
            heap.push(((long) PairMergeMap.rank(merge) << 32) | position);
        }
    }

    /** A binary min-heap of longs. */
    private static final class LongMinHeap {
        private long[] a;
        private int size;

        LongMinHeap(int capacity) {
            a = new long[Math.max(capacity, 4)];
        }

        boolean isEmpty() {
            return size == 0;
        }

        void push(long value) {
            if (size == a.length) {
                a = java.util.Arrays.copyOf(a, size * 2);
            }
            int i = size++;
            while (i > 0) {
                int parent = (i - 1) >>> 1;
                if (a[parent] <= value) {
                    break;
                }
                a[i] = a[parent];
                i = parent;
            }
            a[i] = value;
        }

        long pop() {
            long top = a[0];
            long last = a[--size];
            int i = 0;
            while (true) {
                int child = 2 * i + 1;
                if (child >= size) {
                    break;
                }
                if (child + 1 < size && a[child + 1] < a[child]) {
                    child++;
                }
                if (a[child] >= last) {
                    break;
                }
                a[i] = a[child];
                i = child;
            }
            a[i] = last;
            return top;
        }
    }
}
