package io.ringserve.worker.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.ringserve.model.config.BailingMoeConfig;
import io.ringserve.model.config.BailingMoeV2Config;
import io.ringserve.model.config.RopeScaling;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class ReferenceOpsTest {

    @Test
    void ropeRotatesPairsJAndJPlusHalfAndLeavesTheRestAlone() {
        // d = 8, r = 4: pairs (0,2) and (1,3); dims 4..7 pass through
        float[] x = {1, 2, 3, 4, 5, 6, 7, 8};
        float[] cos = {0, 1};
        float[] sin = {1, 0};
        ReferenceOps.rope(x, 0, cos, sin, 4);
        // pair (0,2) by 90°: (1,3) → (−3, 1); pair (1,3) by 0°: unchanged
        assertArrayEquals(new float[] {-3, 2, 1, 4, 5, 6, 7, 8}, x);
    }

    @Test
    void inverseFrequenciesMatchTorchForRingMini() {
        float[] inv = new RotaryEmbedding(64, 600000, null).inverseFrequencies();
        assertEquals(32, inv.length);
        assertEquals(1.0f, inv[0]);
        assertEquals(0.6598311f, inv[1], 2e-7f);
        assertEquals(0.4353771f, inv[2], 2e-7f);
        assertEquals(0.2872753f, inv[3], 2e-7f);
        assertEquals(2.5259e-6f, inv[31], 1e-9f);
    }

    @Test
    void yarnRampsBetweenDims12And21AndScalesCosAndSin() {
        RopeScaling s = new RopeScaling(4.0, 32768, 32, 1);
        assertEquals(12.2510, RotaryEmbedding.correctionDim(32, 64, 600000, 32768), 1e-4);
        assertEquals(20.5866, RotaryEmbedding.correctionDim(1, 64, 600000, 32768), 1e-4);
        RotaryEmbedding yarn = new RotaryEmbedding(64, 600000, s);
        float[] plain = new RotaryEmbedding(64, 600000, null).inverseFrequencies();
        float[] scaled = yarn.inverseFrequencies();
        for (int j = 0; j <= 12; j++) {
            assertEquals(plain[j], scaled[j], 0f, "dim " + j + " extrapolates (unchanged)");
        }
        for (int j = 21; j < 32; j++) {
            assertEquals(plain[j] / 4, scaled[j], plain[j] * 1e-6f, "dim " + j + " interpolates (divided by s)");
        }
        assertTrue(scaled[16] < plain[16] && scaled[16] > plain[16] / 4);
        float[] cos = new float[32];
        float[] sin = new float[32];
        yarn.angles(0, cos, sin);
        assertEquals(1.1386294f, cos[0], 1e-6f);
    }

    @Test
    void groupScoreIsTheSumOfTheTopTwoNotTheMax() {
        // 8 experts, 4 groups of 2, keep 1 group, top-2
        BailingMoeV2Config c = BailingMoeV2Config.ringMini20().withShape(16, 8, 8, 2, 1, 1, 8, 8, 2, 4, 1, 4, 64);
        GroupLimitedSigmoidRouter gate = new GroupLimitedSigmoidRouter(c);
        // group 0 has the single best expert (0.9) but group 1 sums higher (0.6 + 0.6 > 0.9 + 0.1)
        float[] biased = {0.9f, 0.1f, 0.6f, 0.6f, 0.2f, 0.2f, 0.0f, 0.0f};
        assertArrayEquals(new int[] {2, 3}, gate.groupLimitedTopK(biased));
    }

    @Test
    void biasChoosesButWeightsComeFromUnbiasedScores() {
        BailingMoeV2Config c = BailingMoeV2Config.ringMini20().withShape(16, 8, 8, 2, 1, 1, 8, 8, 2, 1, 1, 4, 64);
        GroupLimitedSigmoidRouter gate = new GroupLimitedSigmoidRouter(c);
        float[] logits = {2f, 1f, 0f, -1f, -2f, -3f, -4f, -5f};
        float[] bias = {0, 0, 0, 0, 0, 0, 0, 10f}; // pushes the worst expert to the top of the ranking
        Router.Route r = gate.route(logits, 0, bias);
        assertArrayEquals(new int[] {7, 0}, r.expertIds());
        double s7 = 1 / (1 + Math.exp(5));
        double s0 = 1 / (1 + Math.exp(-2));
        assertEquals(2.5 * s7 / (s7 + s0), r.weights()[0], 1e-6);
        assertEquals(2.5 * s0 / (s7 + s0), r.weights()[1], 1e-6);
    }

    @Test
    void eachConfigGetsItsVersionsRouter() {
        assertInstanceOf(GroupLimitedSigmoidRouter.class, Router.of(BailingMoeV2Config.ringMini20()));
        Router v1 = Router.of(BailingMoeConfig.ringLite());
        assertInstanceOf(SoftmaxTopKRouter.class, v1);
        assertTrue(!v1.usesExpertBias() && v1.bf16Logits());
    }

    @Test
    void softmaxRouterTakesTheTopKOfTheFullSoftmaxAndRenormalises() {
        float[] logits = {9f, 0f, 2f, -1f, 1f};
        Router.Route r = new SoftmaxTopKRouter(4, 2, true).route(logits, 1, null); // logits 0, 2, -1, 1
        assertArrayEquals(new int[] {1, 3}, r.expertIds(), "best first");
        double e2 = Math.exp(2);
        double e1 = Math.exp(1);
        assertEquals(e2 / (e2 + e1), r.weights()[0], 1e-6);
        assertEquals(e1 / (e2 + e1), r.weights()[1], 1e-6);
        // without norm_topk_prob the weights are the probabilities of the softmax over all experts
        Router.Route raw = new SoftmaxTopKRouter(4, 2, false).route(logits, 1, null);
        double all = 1 + e2 + Math.exp(-1) + e1;
        assertEquals(e2 / all, raw.weights()[0], 1e-6);
        assertEquals(e1 / all, raw.weights()[1], 1e-6);
        // ties go to the lower index, as for the V2 router
        assertArrayEquals(new int[] {0, 1}, new SoftmaxTopKRouter(3, 2, true).route(new float[] {1f, 1f, 1f}, 0, null).expertIds());
    }

    @Test
    void normHeadDividesEachHiddenColumnByItsNormOverTheVocab() {
        // (V=3, D=2): column norms 5 and 2
        Matrix.F32 w = new Matrix.F32(new float[] {3, 0, 4, 2, 0, 0}, 3, 2);
        Matrix.F32 n = ModelWeights.normalizeColumns(w);
        assertEquals(0.6f, n.get(0, 0), 1e-7f);
        assertEquals(0.8f, n.get(1, 0), 1e-7f);
        assertEquals(1.0f, n.get(1, 1), 1e-7f);
        assertEquals(0f, n.get(2, 1));
        // an all-zero column stays zero (the 1e-7 keeps the division finite)
        Matrix.F32 zero = ModelWeights.normalizeColumns(new Matrix.F32(new float[] {0, 1, 0, 1}, 2, 2));
        assertEquals(0f, zero.get(0, 0));
        assertEquals(0.70710677f, zero.get(0, 1), 1e-7f);
    }

    @Test
    void simdAndScalarDotProductsAgreeOnAwkwardLengths() {
        SplittableRandom rng = new SplittableRandom(5);
        for (int n : new int[] {1, 7, 15, 16, 17, 33, 511, 2048, 2049}) {
            float[] x = new float[n + 3];
            byte[] bytes = new byte[2 * n];
            float[] wf = new float[n];
            for (int i = 0; i < n; i++) {
                x[i + 3] = (float) rng.nextGaussian();
                short bits = (short) (Float.floatToIntBits((float) rng.nextGaussian()) >>> 16);
                bytes[2 * i] = (byte) bits;
                bytes[2 * i + 1] = (byte) (bits >> 8);
                wf[i] = Float.intBitsToFloat(bits << 16);
            }
            double exact = 0;
            for (int i = 0; i < n; i++) {
                exact += (double) wf[i] * x[i + 3];
            }
            Matrix.Bf16 w = new Matrix.Bf16(MemorySegment.ofArray(bytes), 1, n);
            float scalar = Dot.bf16Scalar(w.data(), 0, x, 3, n);
            float any = Dot.dot(w, 0, x, 3);
            float f32 = Dot.dot(wf, 0, x, 3, n);
            double tol = 1e-5 * Math.sqrt(n) * 4;
            assertEquals(exact, scalar, tol, "scalar n=" + n);
            assertEquals(exact, any, tol, "dispatch n=" + n);
            assertEquals(exact, f32, tol, "f32 n=" + n);
        }
    }
}
