package io.ringserve.worker.cuda.ops;

import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.GpuTest;
import io.ringserve.worker.cuda.GpuTestSupport;
import io.ringserve.worker.reference.Matrix;
import io.ringserve.worker.reference.ReferenceOps;
import io.ringserve.worker.weights.Bf16;
import java.util.Arrays;

/**
 * moe_experts.cu against ReferenceForward.sparseMoe()'s arithmetic: per (token, k) the SwiGLU of its expert
 * (ReferenceOps.matmul + siluMul), weighted sum in k order, plus the shared expert run through the same kernels
 * with no ids, plus the residual.
 */
class MoeExpertsTest extends GpuTestSupport {

    @GpuTest
    void routedAndSharedExpertsMatchTheReference() {
        MoeExperts op = new MoeExperts(device());
        for (int tokens : new int[] {1, 7, 33}) {
            check(op, tokens, 8, 32, 256, 64, 64); // Ring-mini-like, scaled down
        }
        check(op, 511, 2, 5, 64, 24, 40);
        check(op, 7, 6, 9, 77, 45, 90); // nothing a multiple of the block
        check(op, 3, 1, 1, 40, 8, 13);
    }

    private static void check(MoeExperts op, int tokens, int k, int experts, int hidden, int inter, int sharedInter) {
        String what = "moe T=" + tokens + " K=" + k + " E=" + experts + " D=" + hidden + " I=" + inter + " Is=" + sharedInter;
        long seed = tokens * 7L + k * 11L + experts + hidden + inter;
        float[] x = randomFloats(seed, tokens * hidden, 2f);
        float[] residual = randomFloats(seed + 1, tokens * hidden, 1f);
        float[] w = randomFloats(seed + 2, tokens * k, 1f);
        short[] gateUp = randomBf16(seed + 3, experts * 2 * inter * hidden, 0.1f); // (E, 2I, D)
        short[] down = randomBf16(seed + 4, experts * hidden * inter, 0.1f);       // (E, D, I)
        short[] sGateUp = randomBf16(seed + 5, 2 * sharedInter * hidden, 0.1f);
        short[] sDown = randomBf16(seed + 6, hidden * sharedInter, 0.1f);
        int[] ids = new int[tokens * k];
        for (int t = 0; t < tokens; t++) {
            int[] perm = QkNormRopeCacheTest.shuffledSlots(seed + 7 + t, k, experts);
            System.arraycopy(perm, 0, ids, t * k, k);
        }

        float[] expected = new float[tokens * hidden];
        float[] shared = swiglu(sGateUp, sDown, 0, x, tokens, hidden, sharedInter); // (T, D)
        for (int t = 0; t < tokens; t++) {
            float[] xt = Arrays.copyOfRange(x, t * hidden, (t + 1) * hidden);
            float[] routed = new float[hidden];
            for (int j = 0; j < k; j++) {
                float[] y = swiglu(gateUp, down, ids[t * k + j], xt, 1, hidden, inter);
                for (int i = 0; i < hidden; i++) {
                    routed[i] += w[t * k + j] * y[i];
                }
            }
            for (int i = 0; i < hidden; i++) {
                expected[t * hidden + i] = residual[t * hidden + i] + (shared[t * hidden + i] + routed[i]);
            }
        }

        try (DeviceBuffer dx = upload(x); DeviceBuffer dRes = upload(residual); DeviceBuffer dw = upload(w); DeviceBuffer dIds = upload(ids);
             DeviceBuffer dGu = upload(gateUp); DeviceBuffer dDown = upload(down); DeviceBuffer dsGu = upload(sGateUp); DeviceBuffer dsDown = upload(sDown);
             DeviceBuffer h = poisoned(4L * tokens * k * inter); DeviceBuffer y = poisoned(4L * tokens * k * hidden);
             DeviceBuffer sh = poisoned(4L * tokens * sharedInter); DeviceBuffer sy = poisoned(4L * tokens * hidden);
             DeviceBuffer out = poisoned(4L * tokens * hidden)) {
            var s = device().stream();
            op.gateUpSilu(s, dx, dGu, dIds, h, tokens, k, hidden, inter, experts);
            op.down(s, h, dDown, dIds, y, tokens, k, hidden, inter, experts);
            op.gateUpSilu(s, dx, dsGu, null, sh, tokens, 1, hidden, sharedInter, 1);
            op.down(s, sh, dsDown, null, sy, tokens, 1, hidden, sharedInter, 1);
            op.combine(s, y, dw, sy, dRes, out, tokens, k, hidden);
            assertClose(what, expected, downloadFloats(out, tokens * hidden), 1e-5, 1e-3);
        }
    }

    /** down(silu(gate(x)) ⊙ up(x)) of expert e of packed weights: (T, D). */
    private static float[] swiglu(short[] gateUp, short[] down, int e, float[] x, int tokens, int hidden, int inter) {
        Matrix gate = new Matrix.F32(Bf16.toFloat(Arrays.copyOfRange(gateUp, e * 2 * inter * hidden, (e * 2 * inter + inter) * hidden)), inter, hidden);
        Matrix up = new Matrix.F32(Bf16.toFloat(Arrays.copyOfRange(gateUp, (e * 2 * inter + inter) * hidden, (e + 1) * 2 * inter * hidden)), inter, hidden);
        Matrix dn = new Matrix.F32(Bf16.toFloat(Arrays.copyOfRange(down, e * hidden * inter, (e + 1) * hidden * inter)), hidden, inter);
        float[] g = new float[tokens * inter];
        float[] u = new float[tokens * inter];
        ReferenceOps.matmul(g, x, gate, tokens);
        ReferenceOps.matmul(u, x, up, tokens);
        ReferenceOps.siluMul(g, g, u, g.length);
        float[] y = new float[tokens * hidden];
        ReferenceOps.matmul(y, g, dn, tokens);
        return y;
    }
}
