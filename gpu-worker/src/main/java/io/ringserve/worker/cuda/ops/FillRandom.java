package io.ringserve.worker.cuda.ops;

import io.ringserve.worker.cuda.CudaDevice;
import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.Kernel;
import io.ringserve.worker.weights.Bf16;
import jcuda.driver.CUstream;

/**
 * {@code fill_random.cu}: seeded uniform values in [-scale, scale] for {@code --dummy-weights}, element i a pure
 * function of (seed, i). {@link #value} is the same formula on the host, bit for bit, so tests check the kernel
 * exactly and a CPU run can build the same dummy model:
 * <pre>
 *   bits(seed, i) = mix64(seed + (i + 1) · 0x9E3779B97F4A7C15)     (SplitMix64: the (i+1)-th nextLong() of SplittableRandom(seed))
 *   value         = ((int) (bits &gt;&gt;&gt; 40) − 2^23) · 2^-23 · scale   (fp32; bf16 buffers round it to nearest even)
 * </pre>
 */
public final class FillRandom {
    private static final int THREADS = 256;
    private static final int MAX_BLOCKS = 65535;
    private static final long GOLDEN_GAMMA = 0x9E3779B97F4A7C15L;
    private final Kernel bf16;
    private final Kernel f32;

    public FillRandom(CudaDevice device) {
        this.bf16 = device.module("fill_random").kernel("fill_random_bf16");
        this.f32 = device.module("fill_random").kernel("fill_random_f32");
    }

    /** Fills {@code n} bf16 values. */
    public void bf16(CUstream s, DeviceBuffer out, long n, long seed, float scale) {
        check(out, n, 2, scale);
        bf16.launch(s, blocks(n), THREADS, 0, out, n, seed, scale);
    }

    /** Fills {@code n} fp32 values. */
    public void f32(CUstream s, DeviceBuffer out, long n, long seed, float scale) {
        check(out, n, 4, scale);
        f32.launch(s, blocks(n), THREADS, 0, out, n, seed, scale);
    }

    private static void check(DeviceBuffer out, long n, int width, float scale) {
        if (n < 1) {
            throw new IllegalArgumentException("fill_random: n must be >= 1, got " + n);
        }
        if (!Float.isFinite(scale) || scale < 0) {
            throw new IllegalArgumentException("fill_random: scale must be finite and >= 0, got " + scale);
        }
        Shapes.require("fill_random", "out", out, width * n);
    }

    private static int blocks(long n) {
        return (int) Math.min((n + THREADS - 1) / THREADS, MAX_BLOCKS);
    }

    /** Element {@code i} of an fp32 buffer filled with {@code seed} and {@code scale}. */
    public static float value(long seed, long i, float scale) {
        long bits = mix64(seed + (i + 1) * GOLDEN_GAMMA);
        return ((int) (bits >>> 40) - (1 << 23)) * 0x1p-23f * scale;
    }

    /** Element {@code i} of a bf16 buffer filled with {@code seed} and {@code scale}, as its bit pattern. */
    public static short valueBf16(long seed, long i, float scale) {
        return Bf16.fromFloat(value(seed, i, scale));
    }

    /** SplitMix64's finaliser (Stafford variant 13), as java.util.SplittableRandom.mix64. */
    static long mix64(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
