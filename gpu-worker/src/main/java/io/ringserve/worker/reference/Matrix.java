package io.ringserve.worker.reference;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A weight matrix (rows, cols), row-major as {@code nn.Linear} stores it, so {@code y = x · Wᵀ} reads row r
 * for output r. Bf16 matrices are usually zero-copy views of the memory-mapped checkpoint.
 */
public sealed interface Matrix permits Matrix.Bf16, Matrix.F32 {

    ValueLayout.OfShort BF16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    int rows();

    int cols();

    /** Element (r, c) as float32. */
    float get(int r, int c);

    /** Row r copied into {@code out[off .. off+cols)} as float32. */
    default void row(int r, float[] out, int off) {
        for (int c = 0; c < cols(); c++) {
            out[off + c] = get(r, c);
        }
    }

    /** @param data (rows, cols) bf16, little-endian */
    record Bf16(MemorySegment data, int rows, int cols) implements Matrix {
        public Bf16 {
            if (data.byteSize() != 2L * rows * cols) {
                throw new IllegalArgumentException("bf16 matrix (" + rows + ", " + cols + ") needs " + 2L * rows * cols + " bytes, got " + data.byteSize());
            }
        }

        @Override
        public float get(int r, int c) {
            return Float.intBitsToFloat(data.get(BF16, 2L * ((long) r * cols + c)) << 16);
        }
    }

    /** @param data (rows, cols) float32 */
    record F32(float[] data, int rows, int cols) implements Matrix {
        public F32 {
            if (data.length != (long) rows * cols) {
                throw new IllegalArgumentException("f32 matrix (" + rows + ", " + cols + ") needs " + (long) rows * cols + " floats, got " + data.length);
            }
        }

        @Override
        public float get(int r, int c) {
            return data[r * cols + c];
        }
    }
}
