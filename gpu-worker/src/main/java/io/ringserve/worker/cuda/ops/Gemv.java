package io.ringserve.worker.cuda.ops;

import io.ringserve.worker.cuda.CudaDevice;
import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.Kernel;
import jcuda.driver.CUstream;

/**
 * {@code gemv.cu}: {@code y = x · Wᵀ} (or {@code y += x · Wᵀ}) for 1..8 tokens, the memory-bound decode path:
 * one warp per weight row, 16-byte loads, x staged in shared memory. Mirrors ReferenceOps.matmul. {@link #launchSwiglu}
 * fuses a SwiGLU MLP's gate_up projection with SiLU·mul (bit for bit {@link #launch} followed by {@link SiluMul}).
 * Legend: T = tokens, N = rows of W (outputs), K = columns of W (inputs).
 */
public final class Gemv {
    /** The most tokens one launch serves (one kernel entry point per token count). */
    public static final int MAX_TOKENS = 8;
    /**
     * The most tokens {@link #launchStreamed} / {@link #launchSwigluStreamed} serve, one launch per 8 tokens: the first
     * launch streams W from memory, the next ones find it in L2 (the per-layer projections of these models are 1 to
     * 21 MB, the L2 of an H100 50 MB). Up to here that beats the tensor-core tiles, whose 64 × 64 tiles give a
     * 64-token step only N / 64 blocks (4 for a router gate, 48 for a QKV projection) each marching over all of K.
     * A power of two, so a step and its CUDA-graph bucket take the same path.
     */
    public static final int STREAMED_MAX_TOKENS = 64;
    /**
     * The largest weight read once per 8 tokens: half an H100's 50 MB L2, so the launches after the first find it
     * there. A larger one (the lm_head, 644 MB for Ring-mini-2.0; a dense MLP's 42 MB gate_up) would come from
     * memory again for every 8 tokens and stays on the tensor-core tiles.
     */
    public static final long STREAMED_MAX_WEIGHT_BYTES = 24L << 20;
    private static final int THREADS = 256;
    private static final int ROWS_PER_BLOCK = THREADS / 32;
    private static final int K_CHUNK = 2048;
    private final Kernel[] kernels = new Kernel[MAX_TOKENS + 1];
    private final Kernel[] swiglu = new Kernel[MAX_TOKENS + 1];

    public Gemv(CudaDevice device) {
        for (int t = 1; t <= MAX_TOKENS; t++) {
            kernels[t] = device.module("gemv").kernel("gemv_bf16_" + t);
            swiglu[t] = device.module("gemv").kernel("gemv_swiglu_bf16_" + t);
        }
    }

    /**
     * {@code h = silu(x · W_gateᵀ) ⊙ (x · W_upᵀ)} for a stacked weight.
     *
     * @param h      (T, I) bf16 out
     * @param x      (T, K) bf16
     * @param gateUp (2·I, K) bf16: gate_proj rows, then up_proj rows
     */
    public void launchSwiglu(CUstream s, DeviceBuffer h, DeviceBuffer x, DeviceBuffer gateUp, int tokens, int inter, int k) {
        String op = "gemv_swiglu";
        if (tokens < 1 || tokens > MAX_TOKENS) {
            throw new IllegalArgumentException(op + ": tokens must be 1.." + MAX_TOKENS + ", got " + tokens);
        }
        Shapes.positive(op, "inter", inter);
        Shapes.positive(op, "k", k);
        Shapes.require(op, "h", h, 2L * tokens * inter);
        Shapes.require(op, "x", x, 2L * tokens * k);
        Shapes.require(op, "gateUp", gateUp, 2L * 2 * inter * k);
        int shared = 2 * tokens * Math.min(k, K_CHUNK);
        swiglu[tokens].launch(s, Shapes.ceilDiv(inter, ROWS_PER_BLOCK), THREADS, shared, h, x, gateUp, inter, k);
    }

    /**
     * @param y          (T, N) fp32
     * @param x          (T, K) bf16
     * @param w          (N, K) bf16, row-major as the checkpoint stores it
     * @param accumulate false: y = x·Wᵀ; true: y += x·Wᵀ (e.g. into the residual stream)
     */
    public void launch(CUstream s, DeviceBuffer y, DeviceBuffer x, DeviceBuffer w, int tokens, int n, int k, boolean accumulate) {
        if (tokens < 1 || tokens > MAX_TOKENS) {
            throw new IllegalArgumentException("gemv: tokens must be 1.." + MAX_TOKENS + ", got " + tokens + " (use Matmul)");
        }
        Shapes.positive("gemv", "n", n);
        Shapes.positive("gemv", "k", k);
        Shapes.require("gemv", "y", y, 4L * tokens * n);
        Shapes.require("gemv", "x", x, 2L * tokens * k);
        Shapes.require("gemv", "w", w, 2L * n * k);
        int shared = 2 * tokens * Math.min(k, K_CHUNK);
        kernels[tokens].launch(s, Shapes.ceilDiv(n, ROWS_PER_BLOCK), THREADS, shared, y, x, w, n, k, accumulate ? 1 : 0);
    }

    /**
     * Whether a projection of {@code tokens} tokens over a {@code weightBytes}-byte weight runs here ({@link #launch} up to
     * 8 tokens, {@link #launchStreamed} up to {@link #STREAMED_MAX_TOKENS} for a weight that stays in L2) rather than on
     * the tensor-core tiles. Depends on the token count only through powers of two, so a step and its CUDA-graph bucket
     * agree.
     */
    public static boolean serves(int tokens, long weightBytes) {
        return tokens >= 1 && (tokens <= MAX_TOKENS || tokens <= STREAMED_MAX_TOKENS && weightBytes <= STREAMED_MAX_WEIGHT_BYTES);
    }

    /** {@link #launch} for up to {@link #STREAMED_MAX_TOKENS} tokens: one launch per 8 tokens (the last takes the rest). */
    public void launchStreamed(CUstream s, DeviceBuffer y, DeviceBuffer x, DeviceBuffer w, int tokens, int n, int k, boolean accumulate) {
        streamedTokens("gemv", tokens);
        for (int t0 = 0; t0 < tokens; t0 += MAX_TOKENS) {
            int t = Math.min(MAX_TOKENS, tokens - t0);
            launch(s, slice(y, 4L * n, t0, t), slice(x, 2L * k, t0, t), w, t, n, k, accumulate);
        }
    }

    /** {@link #launchSwiglu} for up to {@link #STREAMED_MAX_TOKENS} tokens: one launch per 8 tokens (the last takes the rest). */
    public void launchSwigluStreamed(CUstream s, DeviceBuffer h, DeviceBuffer x, DeviceBuffer gateUp, int tokens, int inter, int k) {
        streamedTokens("gemv_swiglu", tokens);
        for (int t0 = 0; t0 < tokens; t0 += MAX_TOKENS) {
            int t = Math.min(MAX_TOKENS, tokens - t0);
            launchSwiglu(s, slice(h, 2L * inter, t0, t), slice(x, 2L * k, t0, t), gateUp, t, inter, k);
        }
    }

    private static void streamedTokens(String op, int tokens) {
        if (tokens < 1 || tokens > STREAMED_MAX_TOKENS) {
            throw new IllegalArgumentException(op + ": tokens must be 1.." + STREAMED_MAX_TOKENS + ", got " + tokens);
        }
    }

    /** Rows [t0, t0 + t) of a (T, rowBytes) buffer; the whole buffer when that is all of it. */
    private static DeviceBuffer slice(DeviceBuffer b, long rowBytes, int t0, int t) {
        long from = rowBytes * t0;
        long bytes = rowBytes * t;
        if (from + bytes > b.bytes()) {
            throw new IllegalArgumentException("gemv: a " + b.bytes() + "-byte buffer has no rows " + t0 + ".." + (t0 + t - 1) + " of " + rowBytes + " bytes");
        }
        return from == 0 && bytes == b.bytes() ? b : b.slice(from, bytes);
    }
}
