package io.ringserve.worker.cuda.ops;

import io.ringserve.worker.cuda.CudaDevice;
import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.Kernel;
import jcuda.driver.CUstream;

/**
 * {@code silu_mul.cu}: SwiGLU's {@code h = bf16(silu(gate) · up)} between the gate/up and the down projection.
 * Mirrors ReferenceOps.siluMul. Legend: T = tokens, I = intermediate size.
 */
public final class SiluMul {
    private static final int THREADS = 256;
    private final Kernel kernel;

    public SiluMul(CudaDevice device) {
        this.kernel = device.module("silu_mul").kernel("silu_mul");
    }

    /**
     * The fused layout: one GEMV over the stacked [gate_proj; up_proj] weight (2I, D) gives rows [gate | up].
     *
     * @param h      (T, I) bf16
     * @param gateUp (T, 2I) fp32
     */
    public void launch(CUstream s, DeviceBuffer h, DeviceBuffer gateUp, int tokens, int inter) {
        Shapes.positive("silu_mul", "tokens", tokens);
        Shapes.positive("silu_mul", "inter", inter);
        Shapes.require("silu_mul", "gateUp", gateUp, 8L * tokens * inter);
        DeviceBuffer up = gateUp.slice(4L * inter, gateUp.bytes() - 4L * inter);
        launch(s, h, gateUp, up, tokens, inter, 2 * inter);
    }

    /**
     * @param h      (T, I) bf16
     * @param gate   (T, stride) fp32, the first I columns of each row
     * @param up     (T, stride) fp32, the first I columns of each row
     * @param stride row stride of gate and up in elements, >= I
     */
    public void launch(CUstream s, DeviceBuffer h, DeviceBuffer gate, DeviceBuffer up, int tokens, int inter, int stride) {
        Shapes.positive("silu_mul", "tokens", tokens);
        Shapes.positive("silu_mul", "inter", inter);
        if (stride < inter) {
            throw new IllegalArgumentException("silu_mul: stride " + stride + " < inter " + inter);
        }
        long span = 4L * ((long) (tokens - 1) * stride + inter);
        Shapes.require("silu_mul", "h", h, 2L * tokens * inter);
        Shapes.require("silu_mul", "gate", gate, span);
        Shapes.require("silu_mul", "up", up, span);
        kernel.launch(s, Shapes.ceilDiv(inter, THREADS), Math.min(tokens, Shapes.MAX_GRID_YZ), 1, THREADS, 1, 1, 0,
                Kernel.args(h, gate, up, tokens, inter, stride));
    }
}
