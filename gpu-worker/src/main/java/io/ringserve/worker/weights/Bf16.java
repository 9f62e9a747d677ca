package io.ringserve.worker.weights;

/** Conversions between float32 and bfloat16 bit patterns. */
public final class Bf16 {

    private Bf16() {
    }

    /**
     * Widens a bfloat16 to float32; exact, since bfloat16 is the upper half of a float32.
     *
     * @param bits the bfloat16 bit pattern
     * @return the same value as a float
     */
    public static float toFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    /**
     * Narrows a float32 to bfloat16 with round-to-nearest-even, as PyTorch does; values beyond the
     * bfloat16 range round to infinity.
     *
     * @param f the value
     * @return the bfloat16 bit pattern; a NaN input gives a quiet NaN with the same sign
     */
    public static short fromFloat(float f) {
        int bits = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) {
            // Truncating could drop every set mantissa bit and turn the NaN into an infinity,
            // so keep the top of the payload and force the quiet bit.
            return (short) ((bits >>> 16) | 0x0040);
        }
        // Adding 0x7FFF plus the lowest kept bit rounds halfway cases towards the even neighbour.
        int rounded = bits + 0x7FFF + ((bits >>> 16) & 1);
        return (short) (rounded >>> 16);
    }

    /** {@code f} rounded to the nearest bfloat16 (ties to even), as a float: what a bf16 tensor would hold. */
    public static float round(float f) {
        return toFloat(fromFloat(f));
    }

    /** Widens bfloat16 bit patterns to float32, element by element (exact). */
    public static float[] toFloat(short[] bits) {
        float[] out = new float[bits.length];
        for (int i = 0; i < bits.length; i++) {
            out[i] = toFloat(bits[i]);
        }
        return out;
    }

    /** Narrows float32 values to bfloat16 bit patterns with round-to-nearest-even, element by element. */
    public static short[] fromFloat(float[] values) {
        short[] out = new short[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = fromFloat(values[i]);
        }
        return out;
    }

    /** A copy of {@code values} with every element rounded to the nearest bfloat16. */
    public static float[] round(float[] values) {
        float[] out = new float[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = round(values[i]);
        }
        return out;
    }
}
