package io.ringserve.worker.reference;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** SIMD dot products; only loaded when the Vector API module is present (see {@link Dot}). */
final class VectorDot {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    /** Half the width: 8 bf16 values widen to 8 floats. */
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_128;
    private static final int L = F.length();

    private VectorDot() {
    }

    /** bf16 → f32 is a 16-bit left shift of the bit pattern; two accumulators hide the FMA latency. */
    static float bf16(MemorySegment w, long byteOff, float[] x, int xOff, int n) {
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        int i = 0;
        for (; i + 2 * L <= n; i += 2 * L) {
            FloatVector w0 = widen(w, byteOff + 2L * i);
            FloatVector w1 = widen(w, byteOff + 2L * (i + L));
            acc0 = w0.fma(FloatVector.fromArray(F, x, xOff + i), acc0);
            acc1 = w1.fma(FloatVector.fromArray(F, x, xOff + i + L), acc1);
        }
        for (; i + L <= n; i += L) {
            acc0 = widen(w, byteOff + 2L * i).fma(FloatVector.fromArray(F, x, xOff + i), acc0);
        }
        float s = sum(acc0.add(acc1));
        for (; i < n; i++) {
            s += Float.intBitsToFloat(w.get(Matrix.BF16, byteOff + 2L * i) << 16) * x[xOff + i];
        }
        return s;
    }

    static float f32(float[] a, int aOff, float[] b, int bOff, int n) {
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        int i = 0;
        for (; i + 2 * L <= n; i += 2 * L) {
            acc0 = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), acc0);
            acc1 = FloatVector.fromArray(F, a, aOff + i + L).fma(FloatVector.fromArray(F, b, bOff + i + L), acc1);
        }
        for (; i + L <= n; i += L) {
            acc0 = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), acc0);
        }
        float s = sum(acc0.add(acc1));
        for (; i < n; i++) {
            s += a[aOff + i] * b[bOff + i];
        }
        return s;
    }

    /**
     * The lanes' sum in a fixed order. {@code reduceLanes(ADD)} leaves the order to the implementation, and the
     * interpreter's differs from C2's, so one dot product could round differently before and after JIT
     * compilation; a fixed tree keeps every result reproducible, which is what lets a chain of pipeline stages
     * and a whole-model worker agree bit for bit.
     */
    private static float sum(FloatVector v) {
        // L = 8 lanes (256-bit species)
        return ((v.lane(0) + v.lane(1)) + (v.lane(2) + v.lane(3))) + ((v.lane(4) + v.lane(5)) + (v.lane(6) + v.lane(7)));
    }

    private static FloatVector widen(MemorySegment w, long byteOff) {
        return ((IntVector) ShortVector.fromMemorySegment(S, w, byteOff, ByteOrder.LITTLE_ENDIAN)
                .convertShape(VectorOperators.S2I, I, 0))
                .lanewise(VectorOperators.LSHL, 16)
                .reinterpretAsFloats();
    }
}
