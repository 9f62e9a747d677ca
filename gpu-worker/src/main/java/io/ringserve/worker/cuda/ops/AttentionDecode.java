package io.ringserve.worker.cuda.ops;

import io.ringserve.worker.cuda.CudaDevice;
import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.Kernel;
import jcuda.driver.CUstream;

/**
 * {@code attention_decode.cu}: one new query token per sequence over its paged KV cache (which already holds
 * that token's K/V), GQA with one block per (KV head, sequence) serving the KV head's query heads. Either one
 * pass ({@link #launch}) or split-K flash-decoding ({@link #launchSplit}: partial max/sum/acc per range of
 * keys, merged by the last block of each group to finish), for long contexts with few sequences. Mirrors the attention loop of
 * ReferenceForward.attention() for a token at position {@code contextLen − 1}.
 *
 * <p>Legend: N = sequences, H = query heads, Hkv = KV heads, d = head dim, B = KV block size, MB = block table
 * width, S = rows of one layer's KV cache, Z = splits.
 */
public final class AttentionDecode {
    /** Most query heads per KV head. */
    public static final int MAX_GROUP = 8;
    /** Largest head dim. */
    public static final int MAX_HEAD_DIM = 256;
    private static final int THREADS = 128;
    private final Kernel decode;
    private final Kernel split;

    public AttentionDecode(CudaDevice device) {
        var m = device.module("attention_decode");
        this.decode = m.kernel("attention_decode");
        this.split = m.kernel("attention_decode_split");
    }

    /**
     * @param q           (N, H·d) fp32 queries (qk_norm_rope_cache's q for each sequence's new token)
     * @param kCache      (S, Hkv·d) bf16
     * @param vCache      (S, Hkv·d) bf16
     * @param blockTables (N, MB) int32 block ids in position order
     * @param contextLens (N) int32 keys to attend, position of the new token + 1 (clamped to MB·B; <= 0 gives 0)
     * @param out         (N, H·d) heads in head order: fp32, or bf16 (rounded; the o_proj input) when {@code bf16Out}
     */
    public void launch(CUstream s, DeviceBuffer q, DeviceBuffer kCache, DeviceBuffer vCache, DeviceBuffer blockTables, DeviceBuffer contextLens,
                       DeviceBuffer out, boolean bf16Out, int seqs, int heads, int kvHeads, int headDim, int blockSize, int maxBlocks, int cacheRows) {
        check("attention_decode", q, kCache, vCache, blockTables, contextLens, seqs, heads, kvHeads, headDim, blockSize, maxBlocks, cacheRows);
        Shapes.require("attention_decode", "blockTables", blockTables, 4L * seqs * maxBlocks);
        Shapes.require("attention_decode", "out", out, (bf16Out ? 2L : 4L) * seqs * heads * headDim);
        decode.launch(s, kvHeads, seqs, 1, THREADS, 1, 1, 0, new Object[] {q, kCache, vCache, blockTables, contextLens, bf16Out ? null : out,
                bf16Out ? out : null,
                seqs, heads, kvHeads, headDim, blockSize, maxBlocks, scale(headDim)});
    }

    /** Bytes of the split-K workspace for {@code splits} splits: acc (N, H, Z, d), then m and l (N, H, Z), fp32. */
    public static long workspaceBytes(int seqs, int heads, int headDim, int splits) {
        return 4L * seqs * heads * splits * (headDim + 2L);
    }

    /**
     * Bytes of the merge counters for up to {@code seqs} sequences: (N, Hkv) uint32, counter (n, h) at the same place
     * whatever a launch's N (a buffer of its own: the workspace's layout moves with N). They must be 0 before the first
     * launch that uses them ({@link #clearCounters}); every launch leaves them 0.
     */
    public static long countersBytes(int seqs, int kvHeads) {
        return 4L * seqs * kvHeads;
    }

    /** Zeroes new merge counters, waiting for it. */
    public static void clearCounters(DeviceBuffer counters) {
        counters.fill((byte) 0);
    }

    /**
     * Split-K decode: each sequence's context is cut into {@code splits} ranges of kps = max(minKeysPerSplit,
     * ceil(context / splits) rounded up to 32) keys, split z covering [z·kps, (z+1)·kps); splits past a sequence's
     * context are empty and weigh nothing, so {@code splits} and {@code minKeysPerSplit} stay fixed while contexts
     * grow (CUDA graphs). A sequence's result depends only on its own context and {@code splits}. One launch: the
     * last split block of each (sequence, KV head) to finish merges the partials into {@code out}.
     *
     * @param out       (N, H·d) as in {@link #launch}: fp32, or bf16 when {@code bf16Out}
     * @param workspace at least {@link #workspaceBytes} bytes
     * @param counters  at least {@link #countersBytes} bytes, 0 before its first launch ({@link #clearCounters} once)
     */
    public void launchSplit(CUstream s, DeviceBuffer q, DeviceBuffer kCache, DeviceBuffer vCache, DeviceBuffer blockTables, DeviceBuffer contextLens,
                            DeviceBuffer out, boolean bf16Out, DeviceBuffer workspace, DeviceBuffer counters, int seqs, int heads, int kvHeads, int headDim, int blockSize, int maxBlocks,
                            int cacheRows, int splits, int minKeysPerSplit) {
        String op = "attention_decode_split";
        check(op, q, kCache, vCache, blockTables, contextLens, seqs, heads, kvHeads, headDim, blockSize, maxBlocks, cacheRows);
        Shapes.require(op, "blockTables", blockTables, 4L * seqs * maxBlocks);
        Shapes.gridYZ(op, "splits", splits);
        Shapes.positive(op, "minKeysPerSplit", minKeysPerSplit);
        Shapes.require(op, "out", out, (bf16Out ? 2L : 4L) * seqs * heads * headDim);
        Shapes.require(op, "workspace", workspace, workspaceBytes(seqs, heads, headDim, splits));
        Shapes.require(op, "counters", counters, countersBytes(seqs, kvHeads));
        long accBytes = 4L * seqs * heads * splits * headDim;
        long mlBytes = 4L * seqs * heads * splits;
        DeviceBuffer acc = workspace.slice(0, accBytes);
        DeviceBuffer m = workspace.slice(accBytes, mlBytes);
        DeviceBuffer l = workspace.slice(accBytes + mlBytes, mlBytes);
        split.launch(s, kvHeads, seqs, splits, THREADS, 1, 1, 0, new Object[] {q, kCache, vCache, blockTables, contextLens, bf16Out ? null : out,
                bf16Out ? out : null, acc, m, l, counters, seqs, heads, kvHeads, headDim, blockSize, maxBlocks, scale(headDim), minKeysPerSplit});
    }

    /** 1/sqrt(d), computed as the reference does. */
    static float scale(int headDim) {
        return (float) (1.0 / Math.sqrt(headDim));
    }

    static void check(String op, DeviceBuffer q, DeviceBuffer kCache, DeviceBuffer vCache, DeviceBuffer blockTables, DeviceBuffer rowInfo,
                      int rows, int heads, int kvHeads, int headDim, int blockSize, int maxBlocks, int cacheRows) {
        Shapes.gridYZ(op, "rows", rows);
        Shapes.positive(op, "heads", heads);
        Shapes.positive(op, "kvHeads", kvHeads);
        Shapes.positive(op, "blockSize", blockSize);
        Shapes.positive(op, "maxBlocks", maxBlocks);
        Shapes.positive(op, "cacheRows", cacheRows);
        if (heads % kvHeads != 0 || heads / kvHeads > MAX_GROUP) {
            throw new IllegalArgumentException(op + ": " + heads + " query heads over " + kvHeads + " KV heads; need a whole group of at most " + MAX_GROUP);
        }
        if (headDim < 1 || headDim > MAX_HEAD_DIM) {
            throw new IllegalArgumentException(op + ": head dim must be in [1, " + MAX_HEAD_DIM + "], got " + headDim);
        }
        long kvDim = (long) kvHeads * headDim;
        Shapes.require(op, "q", q, 4L * rows * heads * headDim);
        Shapes.require(op, "kCache", kCache, 2L * cacheRows * kvDim);
        Shapes.require(op, "vCache", vCache, 2L * cacheRows * kvDim);
        Shapes.require(op, "blockTables", blockTables, 4L * maxBlocks);
        Shapes.require(op, "per-row int32 input", rowInfo, 4L * rows);
    }
}
