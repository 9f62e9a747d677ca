package io.ringserve.worker.cuda.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.GpuTest;
import io.ringserve.worker.cuda.GpuTestSupport;
import io.ringserve.worker.weights.Bf16;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** fill_random.cu against its host mirror FillRandom.value, bit for bit; the mirror's own properties without a GPU. */
class FillRandomTest extends GpuTestSupport {

    @Test
    void hostValuesAreSplittableRandomsSequence() {
        SplittableRandom r = new SplittableRandom(1234);
        for (int i = 0; i < 100; i++) {
            long bits = r.nextLong();
            float expected = ((int) (bits >>> 40) - (1 << 23)) * 0x1p-23f * 0.25f;
            assertEquals(expected, FillRandom.value(1234, i, 0.25f), "element " + i);
        }
    }

    @Test
    void hostValuesAreUniformInTheRange() {
        int n = 200_000;
        double sum = 0;
        double sumSq = 0;
        float lo = Float.MAX_VALUE;
        float hi = -Float.MAX_VALUE;
        for (int i = 0; i < n; i++) {
            float v = FillRandom.value(7, i, 0.02f);
            sum += v;
            sumSq += (double) v * v;
            lo = Math.min(lo, v);
            hi = Math.max(hi, v);
        }
        assertTrue(lo >= -0.02f && hi < 0.02f, lo + " .. " + hi);
        assertTrue(lo < -0.0199f && hi > 0.0199f, "the range is covered: " + lo + " .. " + hi);
        assertEquals(0, sum / n, 1e-4);
        assertEquals(0.02 * 0.02 / 3, sumSq / n, 0.02 * 0.02 / 3 * 0.01); // variance of U(-a, a) = a²/3
        assertNotEquals(FillRandom.value(7, 0, 1f), FillRandom.value(8, 0, 1f));
        assertEquals(Bf16.fromFloat(FillRandom.value(7, 5, 1f)), FillRandom.valueBf16(7, 5, 1f));
    }

    @GpuTest
    void deviceValuesEqualTheHostFormula() {
        FillRandom op = new FillRandom(device());
        // 20M elements: more than one grid-stride pass of the 65535 · 256 threads
        for (long n : new long[] {1, 1000, 20_000_001}) {
            long seed = n * 31 + 5;
            try (DeviceBuffer f = poisoned(4 * n); DeviceBuffer b = poisoned(2 * n)) {
                op.f32(device().stream(), f, n, seed, 0.5f);
                op.bf16(device().stream(), b, n, seed, 0.5f);
                float[] got = downloadFloats(f, (int) n);
                short[] gotBf16 = new short[(int) n];
                b.copyToHost(gotBf16);
                for (int i = 0; i < n; i++) {
                    float expected = FillRandom.value(seed, i, 0.5f);
                    if (Float.floatToRawIntBits(got[i]) != Float.floatToRawIntBits(expected) || gotBf16[i] != Bf16.fromFloat(expected)) {
                        throw new AssertionError("n=" + n + " element " + i + ": f32 " + got[i] + ", bf16 " + Bf16.toFloat(gotBf16[i])
                                + ", expected " + expected);
                    }
                }
            }
        }
    }

    @GpuTest
    void aSliceIsFilledWithItsOwnIndices() {
        FillRandom op = new FillRandom(device());
        try (DeviceBuffer f = device().alloc(4 * 100)) {
            f.fill((byte) 0);
            op.f32(device().stream(), f.slice(40, 4 * 50), 50, 3, 1f);
            float[] got = downloadFloats(f, 100);
            for (int i = 0; i < 100; i++) {
                float expected = i >= 10 && i < 60 ? FillRandom.value(3, i - 10, 1f) : 0f;
                assertEquals(expected, got[i], "element " + i);
            }
        }
    }
}
