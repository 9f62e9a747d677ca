package io.ringserve.worker.cuda.ops;

import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.GpuTest;
import io.ringserve.worker.cuda.GpuTestSupport;
import io.ringserve.worker.reference.ReferenceOps;
import io.ringserve.worker.weights.Bf16;
import java.util.Arrays;

/** silu_mul.cu against ReferenceOps.siluMul, on fused [gate | up] rows and on separate tensors. */
class SiluMulTest extends GpuTestSupport {

    @GpuTest
    void fusedGateUpRows() {
        SiluMul op = new SiluMul(device());
        for (int tokens : new int[] {1, 7, 33, 511}) {
            for (int inter : new int[] {512, 5120, 300, 33}) {
                float[] gateUp = randomFloats(tokens * 10L + inter, tokens * 2 * inter, 6f); // (T, 2I)
                float[] expected = new float[tokens * inter];                               // (T, I)
                float[] h = new float[inter];
                for (int t = 0; t < tokens; t++) {
                    float[] gate = Arrays.copyOfRange(gateUp, t * 2 * inter, t * 2 * inter + inter);
                    float[] up = Arrays.copyOfRange(gateUp, t * 2 * inter + inter, (t + 1) * 2 * inter);
                    ReferenceOps.siluMul(h, gate, up, inter);
                    System.arraycopy(h, 0, expected, t * inter, inter);
                }
                try (DeviceBuffer dIn = upload(gateUp); DeviceBuffer out = poisoned(2L * tokens * inter)) {
                    op.launch(device().stream(), out, dIn, tokens, inter);
                    float[] got = downloadBf16(out, tokens * inter);
                    String what = "silu_mul T=" + tokens + " I=" + inter;
                    assertClose(what, expected, got, 1e-2, Double.POSITIVE_INFINITY);
                    assertClose(what + " vs the bf16-rounded reference", Bf16.round(expected), got, 2e-3, Double.POSITIVE_INFINITY);
                }
            }
        }
    }

    @GpuTest
    void separateGateAndUp() {
        SiluMul op = new SiluMul(device());
        int tokens = 7;
        int inter = 130;
        float[] gate = randomFloats(1, tokens * inter, 10f); // (T, I)
        float[] up = randomFloats(2, tokens * inter, 2f);    // (T, I)
        float[] expected = new float[tokens * inter];
        ReferenceOps.siluMul(expected, gate, up, tokens * inter);
        try (DeviceBuffer dg = upload(gate); DeviceBuffer du = upload(up); DeviceBuffer out = poisoned(2L * tokens * inter)) {
            op.launch(device().stream(), out, dg, du, tokens, inter, inter);
            assertClose("silu_mul separate", expected, downloadBf16(out, tokens * inter), 1e-2, Double.POSITIVE_INFINITY);
        }
    }
}
