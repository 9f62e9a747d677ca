package io.ringserve.worker.cuda.ops;

import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.GpuTest;
import io.ringserve.worker.cuda.GpuTestSupport;
import io.ringserve.worker.weights.Bf16;

/** convert.cu against weights.Bf16: fp32 → bf16 rounds as Bf16.fromFloat, bf16 → fp32 is exact. */
class ConvertTest extends GpuTestSupport {

    @GpuTest
    void fp32ToBf16RoundsToNearestEvenLikeTheHost() {
        Convert op = new Convert(device());
        for (int n : new int[] {1, 7, 33, 511, 70_001}) {
            float[] in = randomFloats(n, n, 300f); // (N)
            in[0] = Float.NaN;
            if (n > 2) {
                in[1] = Float.POSITIVE_INFINITY;
                in[2] = 1.00390625f; // exactly halfway between two bf16 values: ties to even
            }
            float[] expected = new float[n];
            for (int i = 0; i < n; i++) {
                expected[i] = Bf16.toFloat(Bf16.fromFloat(in[i]));
            }
            try (DeviceBuffer dIn = upload(in); DeviceBuffer out = poisoned(2L * n)) {
                op.toBf16(device().stream(), out, dIn, n);
                assertBitExact("f32_to_bf16 N=" + n, expected, downloadBf16(out, n));
            }
        }
    }

    @GpuTest
    void bf16ToFp32IsExact() {
        Convert op = new Convert(device());
        for (int n : new int[] {1, 33, 4099}) {
            short[] in = randomBf16(n, n, 50f); // (N)
            float[] expected = new float[n];
            for (int i = 0; i < n; i++) {
                expected[i] = Bf16.toFloat(in[i]);
            }
            try (DeviceBuffer dIn = upload(in); DeviceBuffer out = poisoned(4L * n)) {
                op.toF32(device().stream(), out, dIn, n);
                assertBitExact("bf16_to_f32 N=" + n, expected, downloadFloats(out, n));
            }
        }
    }
}
