package io.ringserve.worker.cuda.ops;

import static org.junit.jupiter.api.Assertions.assertThrows;

import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.GpuTest;
import io.ringserve.worker.cuda.GpuTestSupport;
import io.ringserve.worker.reference.ReferenceOps;
import io.ringserve.worker.weights.Bf16;

/**
 * gemv.cu (T &lt;= 8) and matmul.cu (tensor-core tiles) against ReferenceOps.matmul on the same bf16 x and W.
 * Both accumulate bf16 products (exact in fp32) in fp32, in a different order than the reference: fp32 output,
 * relative L2 error ~1e-6 expected, 1e-5 allowed.
 */
class MatmulTest extends GpuTestSupport {
    private static final double FP32 = 1e-5;

    @GpuTest
    void gemvOverTokensAndAwkwardShapes() {
        Gemv op = new Gemv(device());
        int[][] nk = {{33, 2048}, {1000, 1000}, {1, 5120}, {17, 37}, {9, 4104}, {3, 8}}; // (N, K): K % 8 != 0, several K chunks, ...
        for (int tokens : new int[] {1, 2, 7, 8}) {
            for (int[] s : nk) {
                for (boolean acc : new boolean[] {false, true}) {
                    check("gemv", (y, x, w) -> op.launch(device().stream(), y, x, w, tokens, s[0], s[1], acc), tokens, s[0], s[1], acc, 0);
                }
            }
        }
    }

    /** gemv_swiglu = gemv over the stacked [gate; up] weight followed by silu_mul, bit for bit. */
    @GpuTest
    void gemvSwigluEqualsGemvThenSiluMul() {
        Gemv gemv = new Gemv(device());
        SiluMul silu = new SiluMul(device());
        int[][] ik = {{512, 2048}, {5120, 2048}, {13, 37}, {9, 4104}}; // (I, K): the shared expert, the dense layer, awkward
        for (int tokens : new int[] {1, 3, 8}) {
            for (int[] s : ik) {
                int inter = s[0];
                int k = s[1];
                String what = "gemv_swiglu T=" + tokens + " I=" + inter + " K=" + k;
                short[] x = randomBf16(tokens * 31L + inter, tokens * k, 1f);
                short[] w = randomBf16(tokens * 37L + k, 2 * inter * k, 0.05f);
                try (DeviceBuffer dx = upload(x); DeviceBuffer dw = upload(w); DeviceBuffer gateUp = poisoned(4L * tokens * 2 * inter);
                     DeviceBuffer want = poisoned(2L * tokens * inter); DeviceBuffer got = poisoned(2L * tokens * inter)) {
                    gemv.launch(device().stream(), gateUp, dx, dw, tokens, 2 * inter, k, false);
                    silu.launch(device().stream(), want, gateUp, tokens, inter);
                    gemv.launchSwiglu(device().stream(), got, dx, dw, tokens, inter, k);
                    assertBitExact(what, downloadBf16(want, tokens * inter), downloadBf16(got, tokens * inter));
                }
            }
        }
    }

    @GpuTest
    void matmulOverTokensAndAwkwardShapes() {
        Matmul op = new Matmul(device());
        int[][] tnk = {{9, 33, 2048}, {33, 1000, 1000}, {511, 300, 1000}, {33, 17, 37}, {65, 129, 40}, {100, 64, 5120}};
        for (int[] s : tnk) {
            for (boolean acc : new boolean[] {false, true}) {
                check("matmul", (y, x, w) -> op.launch(device().stream(), y, x, w, s[0], s[1], s[2], acc), s[0], s[1], s[2], acc, 0);
            }
        }
        // the tiled path also for decode-sized batches, and gemv through Matmul's dispatch
        for (int tokens : new int[] {1, 7}) {
            check("matmul tiled", (y, x, w) -> op.launchTiled(device().stream(), y, x, w, tokens, 70, 96, false), tokens, 70, 96, false, 0);
            check("matmul -> gemv", (y, x, w) -> op.launch(device().stream(), y, x, w, tokens, 70, 96, false), tokens, 70, 96, false, 0);
        }
    }

    @GpuTest
    void misalignedOperandsTakeTheElementPath() {
        Gemv gemv = new Gemv(device());
        Matmul matmul = new Matmul(device());
        check("gemv misaligned", (y, x, w) -> gemv.launch(device().stream(), y, x, w, 3, 40, 256, false), 3, 40, 256, false, 2);
        check("matmul misaligned", (y, x, w) -> matmul.launchTiled(device().stream(), y, x, w, 40, 40, 256, false), 40, 40, 256, false, 2);
    }

    @GpuTest
    void gemvRefusesMoreThanEightTokens() {
        Gemv op = new Gemv(device());
        try (DeviceBuffer b = device().alloc(1 << 20)) {
            assertThrows(IllegalArgumentException.class, () -> op.launch(device().stream(), b, b, b, 9, 8, 8, false));
            assertThrows(IllegalArgumentException.class, () -> op.launch(device().stream(), b, b, b, 8, 1024, 1024, false));
        }
    }

    interface Launch {
        void run(DeviceBuffer y, DeviceBuffer x, DeviceBuffer w);
    }

    /**
     * @param offset bytes by which x and w start after their allocation (2: not 16-byte aligned, the scalar path)
     */
    private static void check(String op, Launch launch, int tokens, int n, int k, boolean accumulate, int offset) {
        String what = op + " T=" + tokens + " N=" + n + " K=" + k + " accumulate=" + accumulate + (offset != 0 ? " offset=" + offset : "");
        long seed = (long) tokens * 1_000_003L + (long) n * 1009L + k;
        short[] xBits = randomBf16(seed, tokens * k, 1f);    // (T, K)
        short[] wBits = randomBf16(seed + 1, n * k, 0.05f);  // (N, K)
        float[] y0 = randomFloats(seed + 2, tokens * n, 1f); // (T, N) what an accumulating launch adds to
        float[] expected = new float[tokens * n];           // (T, N)
        ReferenceOps.matmul(expected, Bf16.toFloat(xBits), bf16Matrix(wBits, n, k), tokens);
        if (accumulate) {
            ReferenceOps.add(expected, y0, expected.length);
        }
        try (DeviceBuffer x = device().alloc(2L * tokens * k + offset); DeviceBuffer w = device().alloc(2L * n * k + offset);
             DeviceBuffer y = poisoned(4L * tokens * n)) {
            DeviceBuffer xs = x.slice(offset, 2L * tokens * k);
            DeviceBuffer ws = w.slice(offset, 2L * n * k);
            xs.copyFromHost(xBits);
            ws.copyFromHost(wBits);
            if (accumulate) {
                y.copyFromHost(y0);
            }
            launch.run(y, xs, ws);
            assertClose(what, expected, downloadFloats(y, tokens * n), FP32, Double.POSITIVE_INFINITY);
        }
    }

}
