package io.ringserve.worker.cuda.ops;

import io.ringserve.worker.cuda.CudaDevice;
import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.Kernel;
import jcuda.driver.CUstream;

/**
 * {@code rmsnorm.cu}: {@code x += delta} (optional), then {@code out = bf16(w ⊙ x / sqrt(mean(x²) + eps))}, one
 * block per row. Mirrors ReferenceOps.add + ReferenceOps.rmsnorm. Legend: T = rows, D = width.
 */
public final class RmsNorm {
    private static final int THREADS = 256;
    private final Kernel kernel;

    public RmsNorm(CudaDevice device) {
        this.kernel = device.module("rmsnorm").kernel("rmsnorm");
    }

    /**
     * @param out    (T, D) bf16
     * @param x      (T, D) fp32 residual stream, updated in place when delta is given
     * @param delta  (T, D) fp32 sub-layer output to add into x first, or null
     * @param weight (D) bf16 norm weight
     */
    public void launch(CUstream s, DeviceBuffer out, DeviceBuffer x, DeviceBuffer delta, DeviceBuffer weight, int rows, int dim, float eps) {
        Shapes.positive("rmsnorm", "rows", rows);
        Shapes.positive("rmsnorm", "dim", dim);
        if (!(eps >= 0)) {
            throw new IllegalArgumentException("rmsnorm: eps must be >= 0, got " + eps);
        }
        Shapes.require("rmsnorm", "out", out, 2L * rows * dim);
        Shapes.require("rmsnorm", "x", x, 4L * rows * dim);
        if (delta != null) {
            Shapes.require("rmsnorm", "delta", delta, 4L * rows * dim);
        }
        Shapes.require("rmsnorm", "weight", weight, 2L * dim);
        kernel.launch(s, rows, THREADS, 0, out, x, delta, weight, rows, dim, eps);
    }
}
