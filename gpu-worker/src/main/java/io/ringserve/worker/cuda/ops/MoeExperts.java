package io.ringserve.worker.cuda.ops;

import io.ringserve.worker.cuda.CudaDevice;
import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.Kernel;
import jcuda.driver.CUstream;

/**
 * {@code moe_experts.cu}: the SwiGLU experts of a MoE layer for decode and small batches, with the expert ids
 * read from device memory (router output): {@link #gateUpSilu} h = silu(W_gate[e]·x) ⊙ (W_up[e]·x),
 * {@link #down} y = W_down[e]·h per (token, k), {@link #combine} out = residual + (shared + Σ_k w·y) in k order.
 * No atomics: deterministic. The shared expert (and a dense SwiGLU layer) uses the same two kernels with
 * {@code topkIds = null}, K = 1, E = 1. Mirrors ReferenceForward.sparseMoe() / mlp().
 *
 * <p>Weight layout (bf16): gateUp (E, 2·I, D) = per expert gate_proj rows then up_proj rows; down (E, D, I).
 * Legend: T = tokens, K = experts per token, E = experts, D = hidden, I = expert intermediate.
 */
public final class MoeExperts {
    private static final int THREADS = 256;
    private static final int ROWS_PER_BLOCK = THREADS / 32;
    private final Kernel gateUpSilu;
    private final Kernel down;
    private final Kernel combine;

    public MoeExperts(CudaDevice device) {
        var m = device.module("moe_experts");
        this.gateUpSilu = m.kernel("moe_gate_up_silu");
        this.down = m.kernel("moe_down");
        this.combine = m.kernel("moe_combine");
    }

    /**
     * @param x       (T, D) fp32 MoE input
     * @param gateUp  (E, 2·I, D) bf16 packed gate_proj | up_proj per expert
     * @param topkIds (T, K) int32 expert ids, or null: expert 0 for every (t, k)
     * @param h       (T, K, I) fp32 out
     */
    public void gateUpSilu(CUstream s, DeviceBuffer x, DeviceBuffer gateUp, DeviceBuffer topkIds, DeviceBuffer h,
                           int tokens, int topK, int hidden, int inter, int experts) {
        String op = "moe_gate_up_silu";
        checkShape(op, tokens, topK, hidden, inter, experts, topkIds);
        Shapes.require(op, "x", x, 4L * tokens * hidden);
        Shapes.require(op, "gateUp", gateUp, 2L * experts * 2 * inter * hidden);
        Shapes.require(op, "h", h, 4L * tokens * topK * inter);
        gateUpSilu.launch(s, Shapes.ceilDiv(inter, ROWS_PER_BLOCK), tokens * topK, 1, THREADS, 1, 1, 0, new Object[] {x, gateUp, topkIds, h,
                tokens, topK, hidden, inter, experts});
    }

    /**
     * @param h       (T, K, I) fp32 from {@link #gateUpSilu}
     * @param downW   (E, D, I) bf16 down_proj per expert
     * @param topkIds (T, K) int32, or null: expert 0
     * @param y       (T, K, D) fp32 out
     */
    public void down(CUstream s, DeviceBuffer h, DeviceBuffer downW, DeviceBuffer topkIds, DeviceBuffer y,
                     int tokens, int topK, int hidden, int inter, int experts) {
        String op = "moe_down";
        checkShape(op, tokens, topK, hidden, inter, experts, topkIds);
        Shapes.require(op, "h", h, 4L * tokens * topK * inter);
        Shapes.require(op, "down", downW, 2L * experts * hidden * inter);
        Shapes.require(op, "y", y, 4L * tokens * topK * hidden);
        down.launch(s, Shapes.ceilDiv(hidden, ROWS_PER_BLOCK), tokens * topK, 1, THREADS, 1, 1, 0, new Object[] {h, downW, topkIds, y,
                tokens, topK, hidden, inter, experts});
    }

    /**
     * @param y           (T, K, D) fp32 routed expert outputs
     * @param topkWeights (T, K) fp32
     * @param shared      (T, D) fp32 shared expert output, or null
     * @param residual    (T, D) fp32 added first, or null; may be {@code out}
     * @param out         (T, D) fp32
     */
    public void combine(CUstream s, DeviceBuffer y, DeviceBuffer topkWeights, DeviceBuffer shared, DeviceBuffer residual, DeviceBuffer out,
                        int tokens, int topK, int hidden) {
        String op = "moe_combine";
        Shapes.positive(op, "tokens", tokens);
        Shapes.positive(op, "topK", topK);
        Shapes.positive(op, "hidden", hidden);
        if (tokens > 65535) {
            throw new IllegalArgumentException(op + ": at most 65535 tokens per launch, got " + tokens);
        }
        Shapes.require(op, "y", y, 4L * tokens * topK * hidden);
        Shapes.require(op, "topkWeights", topkWeights, 4L * tokens * topK);
        if (shared != null) {
            Shapes.require(op, "shared", shared, 4L * tokens * hidden);
        }
        if (residual != null) {
            Shapes.require(op, "residual", residual, 4L * tokens * hidden);
        }
        Shapes.require(op, "out", out, 4L * tokens * hidden);
        combine.launch(s, Shapes.ceilDiv(hidden, THREADS), tokens, 1, THREADS, 1, 1, 0, new Object[] {y, topkWeights, shared, residual, out, tokens, topK, hidden});
    }

    private static void checkShape(String op, int tokens, int topK, int hidden, int inter, int experts, DeviceBuffer topkIds) {
        Shapes.positive(op, "tokens", tokens);
        Shapes.positive(op, "topK", topK);
        Shapes.positive(op, "hidden", hidden);
        Shapes.positive(op, "inter", inter);
        Shapes.positive(op, "experts", experts);
        if ((long) tokens * topK > 65535) {
            throw new IllegalArgumentException(op + ": at most 65535 (token, expert) slots per launch, got " + (long) tokens * topK);
        }
        if (topkIds != null) {
            Shapes.require(op, "topkIds", topkIds, 4L * tokens * topK);
        }
    }
}
