package io.ringserve.worker.cuda.ops;

import io.ringserve.worker.cuda.CudaDevice;
import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.Kernel;
import jcuda.driver.CUstream;

/**
 * {@code moe_experts.cu}: the routed SwiGLU experts of a MoE layer, grouped by expert so that each selected expert's
 * weights are read once per step however many tokens chose it. {@link #group} turns the router's ids into a group
 * plan on the device; {@link #gateUpSilu} h = silu(W_gate[e]·x) ⊙ (W_up[e]·x) and {@link #down} y = W_down[e]·h per
 * (token, k) slot, one pass over each weight row serving up to 8 slots of its group; {@link #combine} out = residual
 * + (shared + Σ_k w·y) in k order. Every output element is one warp's fixed-order sum: the values do not depend on
 * the batch or on the grouping. Steps with large groups (prefill) run the two expert kernels on tensor cores instead
 * ({@link #tensorCores(int, int, int)}). Mirrors ReferenceForward.sparseMoe().
 *
 * <p>Weight layout (bf16): gateUp (E, 2·I, D) = per expert gate_proj rows then up_proj rows; down (E, D, I).
 * Legend: T = tokens, K = experts per token, E = experts, D = hidden, I = expert intermediate, TK = T·K slots.
 */
public final class MoeExperts {
    /** Most experts {@code moe_group} plans for (its shared-memory tables). */
    public static final int MAX_EXPERTS = 2048;
    private static final int THREADS = 256;
    private static final int ROWS_PER_BLOCK = THREADS / 32;
    /** moe_down: four output rows per warp. */
    private static final int DOWN_ROWS_PER_BLOCK = 4 * ROWS_PER_BLOCK;
    private static final int SLOTS = 8;       // slots served per pass over a weight row (moe_experts.cu SLOTS)
    private static final int X_CHUNK = 2048;  // moe_experts.cu X_CHUNK
    private static final int H_CHUNK = 1024;  // moe_experts.cu H_CHUNK
    private static final int MMA_THREADS = 128;
    private static final int TILE_M = 64;      // slots per block row of the tensor-core kernels
    private static final int TILE_N = 64;      // outputs per block column (gate_up: 32 gate + 32 up rows)
    private static final int MAX_SLOTS = Shapes.MAX_GRID_YZ * 8; // keeps every index and the combine grid in range
    private final Kernel group;
    private final Kernel gateUpSilu;
    private final Kernel down;
    private final Kernel gateUpSiluMma;
    private final Kernel downMma;
    private final Kernel combine;
    private final Kernel combineNorm;

    public MoeExperts(CudaDevice device) {
        var m = device.module("moe_experts");
        this.group = m.kernel("moe_group");
        this.gateUpSilu = m.kernel("moe_gate_up_silu");
        this.down = m.kernel("moe_down");
        this.gateUpSiluMma = m.kernel("moe_gate_up_silu_mma");
        this.downMma = m.kernel("moe_down_mma");
        this.combine = m.kernel("moe_combine");
        this.combineNorm = m.kernel("moe_combine_norm");
    }

    /** int32 words of the group plan of {@code tokens · topK} slots over {@code experts}: 3 + 3·E + TK. */
    public static long planWords(int tokens, int topK, int experts) {
        return 3L + 3L * experts + (long) tokens * topK;
    }

    /**
     * Whether a step of {@code tokens} runs the routed experts on tensor cores ({@code moe_*_mma}: 64-slot tiles
     * per group, the activations rounded to bf16 before the down projection, as in the bf16 model): when the
     * groups average more slots than one CUDA-core pass serves, T·K > 8·E, with the token threshold rounded up to
     * a power of two (T > 256 on Ring-mini-2.0, T > 128 on Ring-lite) so that a decode step and its CUDA graph
     * bucket (a power of two ≥ T, or the cap) always take the same path. Smaller steps, decode among them, take the
     * CUDA-core kernels, which move the weight bytes at a higher rate and keep fp32 activations.
     */
    public static boolean tensorCores(int tokens, int topK, int experts) {
        long least = ((long) SLOTS * experts + topK - 1) / topK; // tokens at which groups average one pass
        long threshold = least <= 1 ? 1 : Long.highestOneBit(least - 1) << 1; // the power of two ≥ least
        return tokens > threshold;
    }

    /**
     * The group plan: the experts chosen this step, ascending, and the slots t·K + k of each (moe_experts.cu's header
     * gives the layout). Slots whose id lies outside [0, E) join no group.
     *
     * @param topkIds (T, K) int32 router output
     * @param plan    ({@link #planWords}) int32 out
     */
    public void group(CUstream s, DeviceBuffer topkIds, DeviceBuffer plan, int tokens, int topK, int experts) {
        String op = "moe_group";
        checkSlots(op, tokens, topK, experts);
        Shapes.require(op, "topkIds", topkIds, 4L * tokens * topK);
        Shapes.require(op, "plan", plan, 4L * planWords(tokens, topK, experts));
        group.launch(s, 1, 1, 1, THREADS, 1, 1, 0, new Object[] {topkIds, plan, tokens, topK, experts});
    }

    /**
     * @param x      (T, D) bf16 MoE input (the post-attention-normed hidden)
     * @param gateUp (E, 2·I, D) bf16 packed gate_proj | up_proj per expert
     * @param plan   ({@link #planWords}) int32 from {@link #group}
     * @param h      (TK, I) fp32 out (rows of slots in no group are left as they were)
     * @param tensorCores the tensor-core kernel ({@link #tensorCores(int, int, int)} says when)
     */
    public void gateUpSilu(CUstream s, DeviceBuffer x, DeviceBuffer gateUp, DeviceBuffer plan, DeviceBuffer h,
                           int tokens, int topK, int hidden, int inter, int experts, boolean tensorCores) {
        String op = "moe_gate_up_silu";
        checkShape(op, tokens, topK, hidden, inter, experts, plan);
        Shapes.require(op, "x", x, 2L * tokens * hidden);
        Shapes.require(op, "gateUp", gateUp, 2L * experts * 2 * inter * hidden);
        Shapes.require(op, "h", h, 4L * tokens * topK * inter);
        if (tensorCores) {
            gateUpSiluMma.launch(s, Shapes.ceilDiv(inter, TILE_N / 2), maxTiles(tokens, topK, experts), 1, MMA_THREADS, 1, 1, 0,
                    new Object[] {x, gateUp, plan, h, tokens, topK, hidden, inter, experts});
            return;
        }
        int smem = SLOTS * Math.min(hidden, X_CHUNK) * 2;
        gateUpSilu.launch(s, Shapes.ceilDiv(inter, ROWS_PER_BLOCK), maxGroups(tokens, topK, experts), 1, THREADS, 1, 1, smem,
                new Object[] {x, gateUp, plan, h, tokens, topK, hidden, inter, experts});
    }

    /**
     * @param h     (TK, I) fp32 from {@link #gateUpSilu}
     * @param downW (E, D, I) bf16 down_proj per expert
     * @param plan  ({@link #planWords}) int32 from {@link #group}
     * @param y     (TK, D) fp32 out (rows of slots in no group are left as they were)
     * @param tensorCores the tensor-core kernel (h rounded to bf16 on the way in)
     */
    public void down(CUstream s, DeviceBuffer h, DeviceBuffer downW, DeviceBuffer plan, DeviceBuffer y,
                     int tokens, int topK, int hidden, int inter, int experts, boolean tensorCores) {
        String op = "moe_down";
        checkShape(op, tokens, topK, hidden, inter, experts, plan);
        Shapes.require(op, "h", h, 4L * tokens * topK * inter);
        Shapes.require(op, "down", downW, 2L * experts * hidden * inter);
        Shapes.require(op, "y", y, 4L * tokens * topK * hidden);
        if (tensorCores) {
            downMma.launch(s, Shapes.ceilDiv(hidden, TILE_N), maxTiles(tokens, topK, experts), 1, MMA_THREADS, 1, 1, 0,
                    new Object[] {h, downW, plan, y, tokens, topK, hidden, inter, experts});
            return;
        }
        int smem = SLOTS * Math.min(inter, H_CHUNK) * 4;
        down.launch(s, Shapes.ceilDiv(hidden, DOWN_ROWS_PER_BLOCK), maxGroups(tokens, topK, experts), 1, THREADS, 1, 1, smem,
                new Object[] {h, downW, plan, y, tokens, topK, hidden, inter, experts});
    }

    /**
     * @param y           (TK, D) fp32 routed expert outputs
     * @param topkWeights (T, K) fp32
     * @param topkIds     (T, K) int32: a slot whose id lies outside [0, E) adds nothing
     * @param shared      (T, D) fp32 shared expert output, or null
     * @param residual    (T, D) fp32 added first, or null; may be {@code out}
     * @param out         (T, D) fp32
     */
    public void combine(CUstream s, DeviceBuffer y, DeviceBuffer topkWeights, DeviceBuffer topkIds, DeviceBuffer shared, DeviceBuffer residual,
                        DeviceBuffer out, int tokens, int topK, int hidden, int experts) {
        checkCombine("moe_combine", y, topkWeights, topkIds, shared, residual, out, tokens, topK, hidden, experts);
        combine.launch(s, Shapes.ceilDiv(hidden, THREADS), tokens, 1, THREADS, 1, 1, 0,
                new Object[] {y, topkWeights, topkIds, shared, residual, out, tokens, topK, hidden, experts});
    }

    /**
     * {@link #combine}, then the next layer's input RMSNorm of the rows written, in one launch (one block per token):
     * {@code normOut} gets exactly what {@link RmsNorm#launch} of {@code out} would write.
     *
     * @param normOut    (T, D) bf16 out
     * @param normWeight (D) bf16, the next layer's input_layernorm.weight
     */
    public void combineNorm(CUstream s, DeviceBuffer y, DeviceBuffer topkWeights, DeviceBuffer topkIds, DeviceBuffer shared, DeviceBuffer residual,
                            DeviceBuffer out, DeviceBuffer normOut, DeviceBuffer normWeight, int tokens, int topK, int hidden, int experts, float eps) {
        String op = "moe_combine_norm";
        checkCombine(op, y, topkWeights, topkIds, shared, residual, out, tokens, topK, hidden, experts);
        Shapes.require(op, "normOut", normOut, 2L * tokens * hidden);
        Shapes.require(op, "normWeight", normWeight, 2L * hidden);
        combineNorm.launch(s, 1, tokens, 1, THREADS, 1, 1, 0,
                new Object[] {y, topkWeights, topkIds, shared, residual, out, normOut, normWeight, tokens, topK, hidden, experts, eps});
    }

    private static void checkCombine(String op, DeviceBuffer y, DeviceBuffer topkWeights, DeviceBuffer topkIds, DeviceBuffer shared,
                                     DeviceBuffer residual, DeviceBuffer out, int tokens, int topK, int hidden, int experts) {
        checkSlots(op, tokens, topK, experts);
        Shapes.positive(op, "hidden", hidden);
        Shapes.gridYZ(op, "tokens", tokens);
        Shapes.require(op, "y", y, 4L * tokens * topK * hidden);
        Shapes.require(op, "topkWeights", topkWeights, 4L * tokens * topK);
        Shapes.require(op, "topkIds", topkIds, 4L * tokens * topK);
        if (shared != null) {
            Shapes.require(op, "shared", shared, 4L * tokens * hidden);
        }
        if (residual != null) {
            Shapes.require(op, "residual", residual, 4L * tokens * hidden);
        }
        Shapes.require(op, "out", out, 4L * tokens * hidden);
    }

    /** Block columns of the CUDA-core expert kernels: the most groups a step of TK slots can have. */
    private static int maxGroups(int tokens, int topK, int experts) {
        return (int) Math.min(experts, (long) tokens * topK);
    }

    /** Block rows of the tensor-core kernels: the most 64-slot tiles, Σ ceil(n_a / 64) ≤ groups + ceil(TK / 64). */
    private static int maxTiles(int tokens, int topK, int experts) {
        return maxGroups(tokens, topK, experts) + Shapes.ceilDiv((long) tokens * topK, TILE_M);
    }

    private static void checkSlots(String op, int tokens, int topK, int experts) {
        Shapes.positive(op, "tokens", tokens);
        Shapes.positive(op, "topK", topK);
        Shapes.positive(op, "experts", experts);
        if (experts > MAX_EXPERTS) {
            throw new IllegalArgumentException(op + ": at most " + MAX_EXPERTS + " experts, got " + experts);
        }
        if ((long) tokens * topK > MAX_SLOTS) {
            throw new IllegalArgumentException(op + ": at most " + MAX_SLOTS + " (token, expert) slots per launch, got " + (long) tokens * topK);
        }
    }

    private static void checkShape(String op, int tokens, int topK, int hidden, int inter, int experts, DeviceBuffer plan) {
        checkSlots(op, tokens, topK, experts);
        Shapes.positive(op, "hidden", hidden);
        Shapes.positive(op, "inter", inter);
        Shapes.require(op, "plan", plan, 4L * planWords(tokens, topK, experts));
    }
}
