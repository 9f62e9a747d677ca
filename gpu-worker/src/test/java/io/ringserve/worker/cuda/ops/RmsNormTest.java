package io.ringserve.worker.cuda.ops;

import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.GpuTest;
import io.ringserve.worker.cuda.GpuTestSupport;
import io.ringserve.worker.reference.ReferenceOps;
import io.ringserve.worker.weights.Bf16;

/** rmsnorm.cu against ReferenceOps.add + ReferenceOps.rmsnorm on the same bf16 weights. */
class RmsNormTest extends GpuTestSupport {
    private static final float EPS = 1e-6f;

    @GpuTest
    void normalisesRowsWithAndWithoutTheResidualAdd() {
        RmsNorm op = new RmsNorm(device());
        int[] rowCounts = {1, 7, 33, 511};
        int[] dims = {2048, 1000, 33, 128};
        for (int rows : rowCounts) {
            for (int dim : dims) {
                for (boolean residual : new boolean[] {false, true}) {
                    check(op, rows, dim, residual);
                }
            }
        }
    }

    private static void check(RmsNorm op, int rows, int dim, boolean residual) {
        String what = "rmsnorm rows=" + rows + " D=" + dim + " residual=" + residual;
        long seed = rows * 1000L + dim + (residual ? 7 : 0);
        float[] x = randomFloats(seed, rows * dim, 3f);       // (T, D) residual stream
        float[] delta = randomFloats(seed + 1, rows * dim, 1f); // (T, D)
        short[] wBits = randomBf16(seed + 2, dim, 1f);          // (D)
        for (int i = 0; i < dim; i++) {
            wBits[i] = Bf16.fromFloat(1f + 0.5f * Bf16.toFloat(wBits[i])); // around 1, as trained norms are
        }
        float[] expectedX = x.clone();
        if (residual) {
            ReferenceOps.add(expectedX, delta, expectedX.length);
        }
        float[] expected = new float[rows * dim]; // (T, D)
        ReferenceOps.rmsnorm(expected, expectedX, Bf16.toFloat(wBits), rows, dim, EPS);

        try (DeviceBuffer dx = upload(x); DeviceBuffer dDelta = upload(delta); DeviceBuffer dw = upload(wBits);
             DeviceBuffer out = poisoned(2L * rows * dim)) {
            op.launch(device().stream(), out, dx, residual ? dDelta : null, dw, rows, dim, EPS);
            float[] got = downloadBf16(out, rows * dim);
            assertClose(what, expected, got, 1e-2, Double.POSITIVE_INFINITY);
            // the only difference from the reference is the final bf16 rounding (and rare flips of it)
            assertClose(what + " vs the bf16-rounded reference", Bf16.round(expected), got, 2e-3, Double.POSITIVE_INFINITY);
            assertBitExact(what + " residual stream", expectedX, downloadFloats(dx, rows * dim));
        }
    }
}
