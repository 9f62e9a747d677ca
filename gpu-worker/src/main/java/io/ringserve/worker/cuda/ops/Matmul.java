package io.ringserve.worker.cuda.ops;

import io.ringserve.worker.cuda.CudaDevice;
import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.Kernel;
import jcuda.driver.CUstream;

/**
 * {@code y = x · Wᵀ} (or {@code y += x · Wᵀ}) for any token count, bf16 in, fp32 accumulated and out. Up to
 * 8 tokens, and up to {@link Gemv#STREAMED_MAX_TOKENS} for a weight that fits in L2, it runs {@link Gemv} (weight
 * bandwidth is all that matters; above 8 tokens one launch per 8, W from L2 after the first; {@link Gemv#serves});
 * otherwise the tensor-core tiles of {@code matmul.cu} (mma.sync m16n8k16, 64 × 64 tiles). Mirrors ReferenceOps.matmul.
 * Legend: T = tokens, N = rows of W (outputs), K = columns of W (inputs).
 */
public final class Matmul {
    private static final int TILE = 64;
    private static final int THREADS = 128;
    private final Gemv gemv;
    private final Kernel tiled;

    public Matmul(CudaDevice device) {
        this.gemv = new Gemv(device);
        this.tiled = device.module("matmul").kernel("matmul_bf16");
    }

    /**
     * @param y (T, N) fp32
     * @param x (T, K) bf16
     * @param w (N, K) bf16, row-major as the checkpoint stores it
     */
    public void launch(CUstream s, DeviceBuffer y, DeviceBuffer x, DeviceBuffer w, int tokens, int n, int k, boolean accumulate) {
        if (Gemv.serves(tokens, 2L * n * k)) {
            gemv.launchStreamed(s, y, x, w, tokens, n, k, accumulate);
        } else {
            launchTiled(s, y, x, w, tokens, n, k, accumulate);
        }
    }

    /** The tensor-core path whatever the token count (tests and benchmarks compare it with {@link Gemv}). */
    public void launchTiled(CUstream s, DeviceBuffer y, DeviceBuffer x, DeviceBuffer w, int tokens, int n, int k, boolean accumulate) {
        Shapes.positive("matmul", "tokens", tokens);
        Shapes.positive("matmul", "n", n);
        Shapes.positive("matmul", "k", k);
        Shapes.require("matmul", "y", y, 4L * tokens * n);
        Shapes.require("matmul", "x", x, 2L * tokens * k);
        Shapes.require("matmul", "w", w, 2L * n * k);
        int gridY = Shapes.ceilDiv(tokens, TILE);
        if (gridY > Shapes.MAX_GRID_YZ) {
            throw new IllegalArgumentException("matmul: " + tokens + " tokens is more than one launch serves (" + Shapes.MAX_GRID_YZ * TILE + ")");
        }
        tiled.launch(s, Shapes.ceilDiv(n, TILE), gridY, 1, THREADS, 1, 1, 0, Kernel.args(y, x, w, tokens, n, k, accumulate ? 1 : 0));
    }
}
