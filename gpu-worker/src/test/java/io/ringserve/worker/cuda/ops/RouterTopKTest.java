package io.ringserve.worker.cuda.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import io.ringserve.model.config.BailingMoeV2Config;
import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.GpuTest;
import io.ringserve.worker.cuda.GpuTestSupport;
import io.ringserve.worker.reference.GroupLimitedSigmoidRouter;
import io.ringserve.worker.reference.Matrix;
import io.ringserve.worker.reference.ReferenceOps;
import io.ringserve.worker.reference.Router;
import io.ringserve.worker.reference.SoftmaxTopKRouter;
import io.ringserve.worker.weights.Bf16;

/**
 * router_top_k.cu against GroupLimitedSigmoidRouter (V2) and SoftmaxTopKRouter (v1) on logits from
 * ReferenceOps.matmul: expert ids must be equal, in order, except where the reference's own choice values are
 * within fp32-reduction noise of each other; duplicated gate rows make exact ties, which the lower expert id
 * must win on both sides. Weights to 1e-5.
 */
class RouterTopKTest extends GpuTestSupport {

    @GpuTest
    void v2GroupLimitedSigmoidMatchesTheReference() {
        RouterTopK op = new RouterTopK(device());
        for (int tokens : new int[] {1, 7, 33, 511}) {
            checkV2(op, tokens, 2048, 256, 8, 8, 4, false); // Ring-mini-2.0
        }
        checkV2(op, 33, 100, 256, 8, 8, 4, true); // exact ties between experts and between whole groups
        checkV2(op, 7, 77, 48, 5, 6, 2, true);    // E, D not multiples of 32
        checkV2(op, 9, 33, 32, 3, 16, 3, false);  // two experts per group, the smallest group the config allows
    }

    @GpuTest
    void v1SoftmaxMatchesTheReference() {
        RouterTopK op = new RouterTopK(device());
        for (int tokens : new int[] {1, 7, 33, 511}) {
            checkV1(op, tokens, 2048, 64, 6, true, false); // Ring-lite, bf16 logits as HF
        }
        checkV1(op, 11, 65, 64, 6, false, true);
        checkV1(op, 2, 31, 3, 3, false, false); // K = E
    }

    private static void checkV2(RouterTopK op, int tokens, int hidden, int experts, int topK, int groups, int topkGroup, boolean ties) {
        BailingMoeV2Config c = BailingMoeV2Config.ringMini20().withShape(16, hidden, 8, 2, 1, 1, 8, experts, topK, groups, topkGroup, 8, 64);
        Router reference = new GroupLimitedSigmoidRouter(c);
        long seed = tokens * 101L + hidden + experts;
        short[] gate = randomBf16(seed, experts * hidden, 0.05f);
        float[] bias = randomFloats(seed + 1, experts, 0.05f);
        if (ties) {
            duplicate(gate, bias, experts, hidden, experts / groups);
        }
        run(op, "router V2 T=" + tokens + " D=" + hidden + " E=" + experts + " K=" + topK + " G=" + topkGroup + "/" + groups + " ties=" + ties,
                reference, new RouterTopK.Rules(RouterTopK.Scoring.SIGMOID_GROUP_LIMITED, experts, topK, groups, topkGroup, false, true,
                        (float) c.routedScalingFactor()), tokens, hidden, gate, bias, false, seed);
    }

    private static void checkV1(RouterTopK op, int tokens, int hidden, int experts, int topK, boolean bf16Logits, boolean ties) {
        Router reference = new SoftmaxTopKRouter(experts, topK, true);
        long seed = tokens * 103L + hidden + experts;
        short[] gate = randomBf16(seed, experts * hidden, 0.05f);
        if (ties) {
            duplicate(gate, null, experts, hidden, experts);
        }
        run(op, "router v1 T=" + tokens + " D=" + hidden + " E=" + experts + " K=" + topK + " bf16 logits=" + bf16Logits + " ties=" + ties,
                reference, new RouterTopK.Rules(RouterTopK.Scoring.SOFTMAX, experts, topK, 1, 1, bf16Logits, true, 1f), tokens, hidden, gate, null,
                bf16Logits, seed);
    }

    /**
     * launchWithPlan: the same ids and weights as launch, and the group plan of those ids from the block that finished
     * last; the block counter is 0 again after every launch, so launching again (as a graph replays) plans again.
     */
    @GpuTest
    void theLastBlockPlansTheExperts() {
        RouterTopK op = new RouterTopK(device());
        for (int tokens : new int[] {1, 7, 64, 511}) {
            BailingMoeV2Config c = BailingMoeV2Config.ringMini20();
            int e = c.numExperts();
            int k = c.numExpertsPerTok();
            RouterTopK.Rules rules = new RouterTopK.Rules(RouterTopK.Scoring.SIGMOID_GROUP_LIMITED, e, k, c.nGroup(), c.topkGroup(), false, true,
                    (float) c.routedScalingFactor());
            long seed = 31L * tokens;
            float[] logits = randomFloats(seed, tokens * e, 3f); // (T, E)
            float[] bias = randomFloats(seed + 1, e, 0.05f);    // (E)
            int planWords = (int) MoeExperts.planWords(tokens, k, e);
            try (DeviceBuffer dl = upload(logits); DeviceBuffer db = upload(bias); DeviceBuffer ids = poisoned(4L * tokens * k);
                 DeviceBuffer w = poisoned(4L * tokens * k); DeviceBuffer ids2 = poisoned(4L * tokens * k); DeviceBuffer w2 = poisoned(4L * tokens * k);
                 DeviceBuffer plan = poisoned(4L * planWords); DeviceBuffer done = device().alloc(4)) {
                done.fill((byte) 0);
                op.launch(device().stream(), dl, db, ids, w, tokens, rules);
                for (int launch = 0; launch < 2; launch++) {
                    plan.fill((byte) 0xFF);
                    op.launchWithPlan(device().stream(), dl, db, ids2, w2, plan, done, tokens, rules);
                    String what = "router with plan T=" + tokens + ", launch " + launch;
                    int[] gotIds = new int[tokens * k];
                    ids2.copyToHost(gotIds);
                    int[] wantIds = new int[tokens * k];
                    ids.copyToHost(wantIds);
                    assertArrayEquals(wantIds, gotIds, what + ": ids");
                    assertBitExact(what + ": weights", downloadFloats(w, tokens * k), downloadFloats(w2, tokens * k));
                    int[] gotPlan = new int[planWords];
                    plan.copyToHost(gotPlan);
                    MoeExpertsTest.assertPlan(what, gotPlan, gotIds, e);
                    int[] counter = new int[1];
                    done.copyToHost(counter);
                    assertEquals(0, counter[0], what + ": the block counter is reset");
                }
            }
        }
    }

    /** Odd experts of the second half copy their even neighbour; with groups, group 1 copies group 0. */
    private static void duplicate(short[] gate, float[] bias, int experts, int hidden, int perGroup) {
        for (int e = 0; e < experts; e++) {
            int src = -1;
            if (e >= experts / 2 && e % 2 == 1) {
                src = e - 1;
            }
            if (perGroup < experts && e / perGroup == 1) {
                src = e - perGroup;
            }
            if (src >= 0) {
                System.arraycopy(gate, src * hidden, gate, e * hidden, hidden);
                if (bias != null) {
                    bias[e] = bias[src];
                }
            }
        }
    }

    private static void run(RouterTopK op, String what, Router reference, RouterTopK.Rules rules, int tokens, int hidden, short[] gate, float[] bias,
                            boolean bf16Logits, long seed) {
        int e = rules.experts();
        int k = rules.topK();
        float[] x = randomFloats(seed + 2, tokens * hidden, 2f); // (T, D)
        float[] logits = new float[tokens * e];                   // (T, E)
        ReferenceOps.matmul(logits, x, new Matrix.F32(Bf16.toFloat(gate), e, hidden), tokens);
        float[] raw = logits; // the kernel gets them as the gate projection leaves them and rounds v1's itself
        if (bf16Logits) {
            logits = Bf16.round(logits);
        }
        try (DeviceBuffer dl = upload(raw); DeviceBuffer db = bias == null ? null : upload(bias);
             DeviceBuffer ids = poisoned(4L * tokens * k); DeviceBuffer w = poisoned(4L * tokens * k)) {
            op.launch(device().stream(), dl, db, ids, w, tokens, rules);
            int[] gotIds = new int[tokens * k];
            ids.copyToHost(gotIds);
            float[] gotW = downloadFloats(w, tokens * k);
            float[] expectedW = new float[tokens * k];
            int nearTies = 0;
            for (int t = 0; t < tokens; t++) {
                Router.Route r = reference.route(logits, t * e, bias);
                boolean same = true;
                for (int j = 0; j < k; j++) {
                    same &= r.expertIds()[j] == gotIds[t * k + j];
                }
                if (!same) {
                    float[] choice = choiceValues(rules, logits, t * e, bias);
                    if (!withinNoise(choice, r.expertIds(), java.util.Arrays.copyOfRange(gotIds, t * k, t * k + k))) {
                        fail(what + ": token " + t + " routes to " + java.util.Arrays.toString(java.util.Arrays.copyOfRange(gotIds, t * k, t * k + k))
                                + ", expected " + java.util.Arrays.toString(r.expertIds()));
                    }
                    nearTies++;
                    System.arraycopy(gotW, t * k, expectedW, t * k, k); // weights of a near tie are not compared
                    continue;
                }
                System.arraycopy(r.weights(), 0, expectedW, t * k, k);
            }
            if (nearTies > Math.max(1, tokens / 20)) {
                fail(what + ": " + nearTies + " of " + tokens + " tokens route differently within noise; too many");
            }
            assertClose(what + " weights", expectedW, gotW, 1e-5, 1e-5);
        }
    }

    /** What the router ranks experts by: V2 sigmoid + bias, v1 the softmax probability. */
    private static float[] choiceValues(RouterTopK.Rules rules, float[] logits, int off, float[] bias) {
        int e = rules.experts();
        float[] c = new float[e];
        if (rules.scoring() == RouterTopK.Scoring.SOFTMAX) {
            System.arraycopy(logits, off, c, 0, e);
            ReferenceOps.softmax(c, 0, e);
            return c;
        }
        for (int i = 0; i < e; i++) {
            c[i] = (float) (1.0 / (1.0 + Math.exp(-logits[off + i]))) + (bias == null ? 0f : bias[i]);
        }
        return c;
    }

    /** Every differing id's choice value is within 1e-5 of the one the reference chose at that slot. */
    private static boolean withinNoise(float[] choice, int[] expected, int[] got) {
        for (int j = 0; j < expected.length; j++) {
            if (expected[j] != got[j]) {
                if (got[j] < 0 || got[j] >= choice.length) {
                    return false;
                }
                if (Math.abs(choice[expected[j]] - choice[got[j]]) > 1e-5f) {
                    return false;
                }
            }
        }
        return true;
    }
}
