package io.ringserve.worker.cuda.ops;

import io.ringserve.worker.cuda.CudaDevice;
import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.Kernel;
import io.ringserve.worker.reference.RotaryEmbedding;
import jcuda.driver.CUstream;

/**
 * {@code qk_norm_rope_cache.cu}: from the fused QKV projection output, per-head RMSNorm of q and k (V2), partial
 * NeoX RoPE from host-computed cos/sin tables, q out for attention, k and v into one layer's paged KV cache.
 * Mirrors ReferenceForward.attention() up to the KV write. One block per token.
 *
 * <p>Legend: T = tokens, H = query heads, Hkv = KV heads, d = head dim, r = rotary dims, P = table rows
 * (positions), S = rows of one layer's KV cache (blocks · block size).
 */
public final class QkNormRopeCache {
    /** The largest head dim the kernel supports. */
    public static final int MAX_HEAD_DIM = 256;
    private static final int THREADS = 128;
    private static final int WARPS = THREADS / 32;
    private final Kernel kernel;

    public QkNormRopeCache(CudaDevice device) {
        this.kernel = device.module("qk_norm_rope_cache").kernel("qk_norm_rope_cache");
    }

    /**
     * The cos and sin tables the kernel reads, row p = position p: {@code RotaryEmbedding.angles(p, ..)}, which
     * already carries YaRN's frequencies and attention factor.
     *
     * @return {cos, sin}, each (P, r/2) fp32, row-major
     */
    public static float[][] ropeTables(RotaryEmbedding rotary, int positions) {
        int half = rotary.rotaryDim() / 2;
        float[] cos = new float[Math.multiplyExact(positions, half)];
        float[] sin = new float[cos.length];
        float[] c = new float[half];
        float[] s = new float[half];
        for (int p = 0; p < positions; p++) {
            rotary.angles(p, c, s);
            System.arraycopy(c, 0, cos, p * half, half);
            System.arraycopy(s, 0, sin, p * half, half);
        }
        return new float[][] {cos, sin};
    }

    /**
     * @param qkv       (T, (H + 2·Hkv)·d) fp32 projection output, head slots Q | K | V
     * @param positions (T) int32 absolute positions, each in [0, P)
     * @param slots     (T) int32 KV cache row of each token ({@code table[p / B]·B + p % B}); outside [0, S): not written
     * @param cosTable  (P, r/2) fp32, see {@link #ropeTables}
     * @param sinTable  (P, r/2) fp32
     * @param qNorm     (d) bf16 query_layernorm.weight, or null without QK-norm (then kNorm must be null too)
     * @param kNorm     (d) bf16 key_layernorm.weight, or null
     * @param qOut      (T, H·d) fp32 q after norm and RoPE
     * @param kCache    (S, Hkv·d) bf16 this layer's keys
     * @param vCache    (S, Hkv·d) bf16 this layer's values
     * @param positionsInTable P
     * @param cacheRows S
     */
    public void launch(CUstream s, DeviceBuffer qkv, DeviceBuffer positions, DeviceBuffer slots, DeviceBuffer cosTable, DeviceBuffer sinTable,
                       DeviceBuffer qNorm, DeviceBuffer kNorm, DeviceBuffer qOut, DeviceBuffer kCache, DeviceBuffer vCache,
                       int tokens, int heads, int kvHeads, int headDim, int rotaryDim, int positionsInTable, int cacheRows, float eps) {
        String op = "qk_norm_rope_cache";
        Shapes.positive(op, "tokens", tokens);
        Shapes.positive(op, "heads", heads);
        Shapes.positive(op, "kvHeads", kvHeads);
        Shapes.positive(op, "positionsInTable", positionsInTable);
        Shapes.positive(op, "cacheRows", cacheRows);
        if (headDim < 2 || headDim > MAX_HEAD_DIM || headDim % 2 != 0) {
            throw new IllegalArgumentException(op + ": head dim must be even and in [2, " + MAX_HEAD_DIM + "], got " + headDim);
        }
        if (rotaryDim < 2 || rotaryDim > headDim || rotaryDim % 2 != 0) {
            throw new IllegalArgumentException(op + ": rotary dim must be even and in [2, head dim " + headDim + "], got " + rotaryDim);
        }
        if ((qNorm == null) != (kNorm == null)) {
            throw new IllegalArgumentException(op + ": pass both QK-norm weights or neither");
        }
        boolean qkNorm = qNorm != null;
        if (qkNorm && !(eps >= 0)) {
            throw new IllegalArgumentException(op + ": eps must be >= 0, got " + eps);
        }
        long kvDim = (long) kvHeads * headDim;
        Shapes.require(op, "qkv", qkv, 4L * tokens * (heads + 2L * kvHeads) * headDim);
        Shapes.require(op, "positions", positions, 4L * tokens);
        Shapes.require(op, "slots", slots, 4L * tokens);
        Shapes.require(op, "cosTable", cosTable, 4L * positionsInTable * (rotaryDim / 2));
        Shapes.require(op, "sinTable", sinTable, 4L * positionsInTable * (rotaryDim / 2));
        if (qkNorm) {
            Shapes.require(op, "qNorm", qNorm, 2L * headDim);
            Shapes.require(op, "kNorm", kNorm, 2L * headDim);
        }
        Shapes.require(op, "qOut", qOut, 4L * tokens * heads * headDim);
        Shapes.require(op, "kCache", kCache, 2L * cacheRows * kvDim);
        Shapes.require(op, "vCache", vCache, 2L * cacheRows * kvDim);
        int headSlotBlocks = (heads + 2 * kvHeads + WARPS - 1) / WARPS; // warp w of block y: head slot WARPS·y + w
        Shapes.gridYZ(op, "head slot blocks", headSlotBlocks);
        kernel.launch(s, tokens, headSlotBlocks, 1, THREADS, 1, 1, 0, new Object[] {qkv, positions, slots, cosTable, sinTable, qNorm, kNorm, qOut,
                kCache, vCache, tokens, heads, kvHeads, headDim, rotaryDim, positionsInTable, cacheRows, qkNorm ? 1 : 0, eps});
    }
}
