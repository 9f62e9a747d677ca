package io.ringserve.worker.reference;

import java.lang.foreign.MemorySegment;

/**
 * Row-times-vector dot products, the inner loop of every matmul. Uses the Vector API when the JVM was
 * started with {@code --add-modules jdk.incubator.vector}; otherwise (or with {@code -Dringserve.vector=false})
 * plain loops with four accumulators. The two differ only in float summation order.
 */
public final class Dot {
    /** Whether the SIMD path is in use. */
    public static final boolean VECTORIZED = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent()
            && !"false".equals(System.getProperty("ringserve.vector"));

    private Dot() {
    }

    /** Σ_c W[r, c] · x[xOff + c]. */
    public static float dot(Matrix w, int r, float[] x, int xOff) {
        return switch (w) {
            case Matrix.Bf16 b -> VECTORIZED
                    ? VectorDot.bf16(b.data(), 2L * r * b.cols(), x, xOff, b.cols())
                    : bf16Scalar(b.data(), 2L * r * b.cols(), x, xOff, b.cols());
            case Matrix.F32 f -> VECTORIZED
                    ? VectorDot.f32(f.data(), r * f.cols(), x, xOff, f.cols())
                    : f32Scalar(f.data(), r * f.cols(), x, xOff, f.cols());
        };
    }

    /** Σ_i a[aOff + i] · b[bOff + i]. */
    public static float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        return VECTORIZED ? VectorDot.f32(a, aOff, b, bOff, n) : f32Scalar(a, aOff, b, bOff, n);
    }

    static float bf16Scalar(MemorySegment w, long byteOff, float[] x, int xOff, int n) {
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int i = 0;
        for (; i + 3 < n; i += 4) {
            long o = byteOff + 2L * i;
            s0 += bf16(w, o) * x[xOff + i];
            s1 += bf16(w, o + 2) * x[xOff + i + 1];
            s2 += bf16(w, o + 4) * x[xOff + i + 2];
            s3 += bf16(w, o + 6) * x[xOff + i + 3];
        }
        for (; i < n; i++) {
            s0 += bf16(w, byteOff + 2L * i) * x[xOff + i];
        }
        return (s0 + s1) + (s2 + s3);
    }

    static float f32Scalar(float[] a, int aOff, float[] b, int bOff, int n) {
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int i = 0;
        for (; i + 3 < n; i += 4) {
            s0 += a[aOff + i] * b[bOff + i];
            s1 += a[aOff + i + 1] * b[bOff + i + 1];
            s2 += a[aOff + i + 2] * b[bOff + i + 2];
            s3 += a[aOff + i + 3] * b[bOff + i + 3];
        }
        for (; i < n; i++) {
            s0 += a[aOff + i] * b[bOff + i];
        }
        return (s0 + s1) + (s2 + s3);
    }

    private static float bf16(MemorySegment w, long byteOff) {
        return Float.intBitsToFloat(w.get(Matrix.BF16, byteOff) << 16);
    }
}
