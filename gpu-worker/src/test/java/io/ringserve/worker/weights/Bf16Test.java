package io.ringserve.worker.weights;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The array forms and round() agree with the scalar conversions, ties go to even. */
class Bf16Test {

    @Test
    void roundGoesToTheNearestBf16TiesToEven() {
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: the even neighbour is 1
        assertEquals(1f, Bf16.round(1f + 0x1p-8f));
        // 1 + 3·2^-8 lies halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even)
        assertEquals(1f + 0x1p-6f, Bf16.round(1f + 3 * 0x1p-8f));
        assertEquals(1f + 0x1p-7f, Bf16.round(1f + 0x1p-8f + 0x1p-20f), "just above the tie rounds up");
        assertTrue(Float.isNaN(Bf16.round(Float.NaN)));
        assertEquals(Float.POSITIVE_INFINITY, Bf16.round(Float.MAX_VALUE));
    }

    @Test
    void arraysConvertElementByElement() {
        float[] values = {0f, -0f, 1.5f, -3.1415927f, 1e-40f, 65504.7f, Float.NEGATIVE_INFINITY};
        short[] bits = Bf16.fromFloat(values);
        float[] back = Bf16.toFloat(bits);
        float[] rounded = Bf16.round(values);
        for (int i = 0; i < values.length; i++) {
            assertEquals(Bf16.fromFloat(values[i]), bits[i], "element " + i);
            assertEquals(Bf16.toFloat(bits[i]), back[i], "element " + i);
        }
        assertArrayEquals(back, rounded);
        assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(back[1]), "the sign of zero survives");
    }
}
