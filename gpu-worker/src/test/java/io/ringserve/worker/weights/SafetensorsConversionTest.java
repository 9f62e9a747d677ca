package io.ringserve.worker.weights;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Edge values of the BF16 and F16 conversions. */
class SafetensorsConversionTest {

    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private static short bf(float f) {
        return Bf16.fromFloat(f);
    }

    private static short bfBits(int floatBits) {
        return Bf16.fromFloat(Float.intBitsToFloat(floatBits));
    }

    @Test
    void bf16ToFloatEdgeValues() {
        assertEquals(0x00000000, Float.floatToRawIntBits(Bf16.toFloat((short) 0x0000)));
        assertEquals(0x80000000, Float.floatToRawIntBits(Bf16.toFloat((short) 0x8000)));
        assertEquals(1.0f, Bf16.toFloat((short) 0x3F80));
        assertEquals(-2.0f, Bf16.toFloat((short) 0xC000));
        assertEquals(Math.scalb(1.0f, -133), Bf16.toFloat((short) 0x0001)); // smallest subnormal
        assertEquals(Math.scalb(-1.0f, -133), Bf16.toFloat((short) 0x8001));
        assertEquals(Float.POSITIVE_INFINITY, Bf16.toFloat((short) 0x7F80));
        assertEquals(Float.NEGATIVE_INFINITY, Bf16.toFloat((short) 0xFF80));
        assertTrue(Float.isNaN(Bf16.toFloat((short) 0x7FC0)));
        assertTrue(Float.isNaN(Bf16.toFloat((short) 0xFF81)));
        assertEquals(0x7F7F0000, Float.floatToRawIntBits(Bf16.toFloat((short) 0x7F7F))); // largest finite
    }

    @Test
    void bf16FromFloatEdgeValues() {
        assertEquals((short) 0x0000, bf(0.0f));
        assertEquals((short) 0x8000, bf(-0.0f));
        assertEquals((short) 0x3F80, bf(1.0f));
        assertEquals((short) 0x7F80, bf(Float.POSITIVE_INFINITY));
        assertEquals((short) 0xFF80, bf(Float.NEGATIVE_INFINITY));
        // Ties go to the even neighbour.
        assertEquals((short) 0x3F80, bfBits(0x3F808000));
        assertEquals((short) 0x3F82, bfBits(0x3F818000));
        assertEquals((short) 0xBF80, bfBits(0xBF808000));
        assertEquals((short) 0xBF82, bfBits(0xBF818000));
        assertEquals((short) 0x3F81, bfBits(0x3F808001));
        assertEquals((short) 0x3F80, bfBits(0x3F807FFF));
        // Rounding may carry into the exponent, and past the largest finite value into infinity.
        assertEquals((short) 0x4000, bfBits(0x3FFFFFFF));
        assertEquals((short) 0x7F80, bf(Float.MAX_VALUE));
        assertEquals((short) 0xFF80, bf(-Float.MAX_VALUE));
        assertEquals((short) 0x7F7F, bfBits(0x7F7F7FFF));
        // Subnormals round like any other value.
        assertEquals((short) 0x0001, bfBits(0x00010000));
        assertEquals((short) 0x0000, bfBits(0x00008000));
        assertEquals((short) 0x0002, bfBits(0x00018000));
        assertEquals((short) 0x0000, bf(Float.MIN_VALUE));
        assertEquals((short) 0x8000, bf(-Float.MIN_VALUE));
        assertEquals((short) 0x0080, bf(Float.MIN_NORMAL));
        assertEquals((short) 0x0080, bfBits(0x007FFFFF)); // largest subnormal rounds up to the smallest normal
        // NaN must stay NaN even when only the dropped mantissa bits were set; the sign is kept.
        for (int nan : new int[] {0x7FC00000, 0x7F800001, 0x7F80FFFF, 0xFF800001, 0x7FFFFFFF}) {
            short b = bfBits(nan);
            assertTrue(Float.isNaN(Bf16.toFloat(b)), Integer.toHexString(nan));
            assertEquals(nan < 0, b < 0, "sign of " + Integer.toHexString(nan));
        }
    }

    @Test
    void everyBf16ValueRoundTrips() {
        for (int b = 0; b < 0x10000; b++) {
            float f = Bf16.toFloat((short) b);
            if (Float.isNaN(f)) {
                assertTrue(Float.isNaN(Bf16.toFloat(Bf16.fromFloat(f))));
            } else {
                assertEquals((short) b, Bf16.fromFloat(f), Integer.toHexString(b));
            }
        }
    }

    @Test
    void bf16RoundingMatchesAnExactReference() {
        Random rnd = new Random(1);
        for (int i = 0; i < 1_000_000; i++) {
            int bits = rnd.nextInt();
            float f = Float.intBitsToFloat(bits);
            if (Float.isNaN(f) || Float.isInfinite(f)) {
                continue;
            }
            // The two bf16 candidates around f (towards zero and away), compared exactly in double.
            int down = bits & 0xFFFF0000;
            int up = down + 0x10000;
            double dDown = Math.abs((double) f - Float.intBitsToFloat(down));
            double dUp = Math.abs((double) f - (((up & 0x7F800000) == 0x7F800000)
                    ? Math.copySign(Math.scalb(1.0, 128), f) : Float.intBitsToFloat(up)));
            int want = dDown < dUp ? down : dUp < dDown ? up : ((down >>> 16) & 1) == 0 ? down : up;
            assertEquals((short) (want >>> 16), Bf16.fromFloat(f), Integer.toHexString(bits));
        }
    }

    @Test
    void f16FilesDecodeEdgeValuesExactly(@TempDir Path tmp) {
        short[] half = {
            0x0000, (short) 0x8000, 0x0001, (short) 0x8001, 0x03FF, 0x0400, 0x3C00, (short) 0xC000,
            0x7BFF, 0x7C00, (short) 0xFC00, 0x7E00, 0x7C01, 0x3555,
        };
        float[] want = {
            0.0f, -0.0f, Math.scalb(1.0f, -24), Math.scalb(-1.0f, -24), 1023 * Math.scalb(1.0f, -24),
            Math.scalb(1.0f, -14), 1.0f, -2.0f, 65504.0f, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY,
            Float.NaN, Float.NaN, 0.25f + 0x155 * Math.scalb(1.0f, -12),
        };
        MemorySegment data = MemorySegment.ofArray(new byte[half.length * 2]);
        for (int i = 0; i < half.length; i++) {
            data.set(I16_LE, 2L * i, half[i]);
        }
        Path file = tmp.resolve("h.safetensors");
        SafetensorsWriter.write(file, null,
                List.of(new SafetensorsWriter.Tensor("h", DType.F16, new long[] {half.length}, data)));
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.openFile(file)) {
            float[] got = ckpt.readFloat("h", half.length);
            MemorySegment asBf16 = ckpt.bf16("h", half.length);
            for (int i = 0; i < half.length; i++) {
                String at = "element " + i + " (0x" + Integer.toHexString(half[i] & 0xFFFF) + ")";
                if (Float.isNaN(want[i])) {
                    assertTrue(Float.isNaN(got[i]), at);
                    assertTrue(Float.isNaN(Bf16.toFloat(asBf16.get(I16_LE, 2L * i))), at);
                } else {
                    assertEquals(Float.floatToRawIntBits(want[i]), Float.floatToRawIntBits(got[i]), at);
                    assertEquals(Bf16.fromFloat(want[i]), asBf16.get(I16_LE, 2L * i), at);
                }
            }
        }
    }

    @Test
    void dtypeParsing() {
        Path f = Path.of("x.safetensors");
        assertEquals(DType.BF16, DType.parse("BF16", f, "t"));
        assertEquals(DType.F16, DType.parse("F16", f, "t"));
        assertEquals(DType.F32, DType.parse("F32", f, "t"));
        assertEquals(2, DType.BF16.byteSize());
        assertEquals(4, DType.F32.byteSize());
        for (String bad : new String[] {"I8", "F64", "bf16", "Q4_K", ""}) {
            WeightsException e = org.junit.jupiter.api.Assertions.assertThrows(WeightsException.class,
                    () -> DType.parse(bad, f, "model.t"));
            assertTrue(e.getMessage().contains("x.safetensors") && e.getMessage().contains("'model.t'")
                    && e.getMessage().contains("'" + bad + "'"), e.getMessage());
        }
    }
}
