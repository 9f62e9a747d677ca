package io.ringserve.worker.cuda.ops;

import io.ringserve.worker.cuda.CudaDevice;
import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.Kernel;
import jcuda.driver.CUstream;

/**
 * {@code convert.cu}: fp32 → bf16 (round to nearest even, as weights.Bf16.fromFloat) and bf16 → fp32 (exact,
 * as weights.Bf16.toFloat) between kernels whose contracts differ. Legend: N = elements.
 */
public final class Convert {
    private static final int THREADS = 256;
    private static final int MAX_BLOCKS = 65535;
    private final Kernel toBf16;
    private final Kernel toF32;

    public Convert(CudaDevice device) {
        this.toBf16 = device.module("convert").kernel("f32_to_bf16");
        this.toF32 = device.module("convert").kernel("bf16_to_f32");
    }

    /**
     * @param out (N) bf16
     * @param in  (N) fp32
     */
    public void toBf16(CUstream s, DeviceBuffer out, DeviceBuffer in, long n) {
        check(n);
        Shapes.require("f32_to_bf16", "out", out, 2 * n);
        Shapes.require("f32_to_bf16", "in", in, 4 * n);
        toBf16.launch(s, blocks(n), THREADS, 0, Kernel.args(out, in, n));
    }

    /**
     * @param out (N) fp32
     * @param in  (N) bf16
     */
    public void toF32(CUstream s, DeviceBuffer out, DeviceBuffer in, long n) {
        check(n);
        Shapes.require("bf16_to_f32", "out", out, 4 * n);
        Shapes.require("bf16_to_f32", "in", in, 2 * n);
        toF32.launch(s, blocks(n), THREADS, 0, Kernel.args(out, in, n));
    }

    private static void check(long n) {
        if (n < 1) {
            throw new IllegalArgumentException("convert: n must be >= 1, got " + n);
        }
    }

    private static int blocks(long n) {
        return (int) Math.min((n + THREADS - 1) / THREADS, MAX_BLOCKS);
    }
}
