package io.ringserve.worker.cuda.ops;

import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.GpuTest;
import io.ringserve.worker.cuda.GpuTestSupport;

/** gather_rows.cu against a host gather, repeated and out-of-range indices included. */
class GatherRowsTest extends GpuTestSupport {

    @GpuTest
    void copiesTheNamedRowsExactly() {
        GatherRows op = new GatherRows(device());
        for (int[] shape : new int[][] {{1, 1, 7}, {7, 33, 300}, {33, 511, 2048}, {64, 64, 257}}) {
            int n = shape[0];
            int r = shape[1];
            int dim = shape[2];
            float[] in = randomFloats(n + r + dim, r * dim, 4f); // (R, D)
            int[] rows = randomInts(n, n, r);                      // (N)
            rows[n - 1] = r - 1;
            float[] expected = new float[n * dim];                 // (N, D)
            for (int i = 0; i < n; i++) {
                System.arraycopy(in, rows[i] * dim, expected, i * dim, dim);
            }
            try (DeviceBuffer dIn = upload(in); DeviceBuffer dRows = upload(rows); DeviceBuffer out = poisoned(4L * n * dim)) {
                op.launch(device().stream(), out, dIn, dRows, n, r, dim);
                assertBitExact("gather_rows N=" + n + " R=" + r + " D=" + dim, expected, downloadFloats(out, n * dim));
            }
        }
    }

    @GpuTest
    void anIndexOutsideTheInputGivesANanRow() {
        GatherRows op = new GatherRows(device());
        float[] in = randomFloats(3, 4 * 8, 1f); // (4, 8)
        try (DeviceBuffer dIn = upload(in); DeviceBuffer dRows = upload(new int[] {4}); DeviceBuffer out = device().alloc(4L * 8)) {
            out.fill((byte) 0); // zeros, so a row left unwritten fails
            op.launch(device().stream(), out, dIn, dRows, 1, 4, 8);
            for (float v : downloadFloats(out, 8)) {
                org.junit.jupiter.api.Assertions.assertTrue(Float.isNaN(v), "row of an out-of-range index");
            }
        }
    }
}
