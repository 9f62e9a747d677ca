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
}
