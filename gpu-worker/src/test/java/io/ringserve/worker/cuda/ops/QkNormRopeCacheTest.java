package io.ringserve.worker.cuda.ops;

import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.GpuTest;
import io.ringserve.worker.cuda.GpuTestSupport;
import io.ringserve.worker.reference.ReferenceOps;
import io.ringserve.worker.reference.RotaryEmbedding;
import io.ringserve.worker.weights.Bf16;
import java.util.Arrays;

/**
 * qk_norm_rope_cache.cu against the per-token loop of ReferenceForward.attention(): ReferenceOps.rmsnorm per
 * head, ReferenceOps.rope with RotaryEmbedding's angles, K/V rows at shuffled slots; rows not written stay NaN.
 */
class QkNormRopeCacheTest extends GpuTestSupport {
    private static final float EPS = 1e-6f;

    @GpuTest
    void matchesTheReferenceForV2AndV1Shapes() {
        QkNormRopeCache op = new QkNormRopeCache(device());
        for (int tokens : new int[] {1, 7, 33, 511}) {
            check(op, tokens, 16, 4, 128, 64, true);   // Ring-mini-2.0: QK-norm, half rotary
            check(op, tokens, 16, 4, 128, 128, false); // Ring-lite: full rotary, no norm
        }
        check(op, 33, 6, 2, 40, 20, true); // head dim not a multiple of the warp
        check(op, 5, 3, 1, 256, 256, true); // the largest head dim
    }

    private static void check(QkNormRopeCache op, int tokens, int heads, int kvHeads, int d, int rotaryDim, boolean qkNorm) {
        String what = "qk_norm_rope_cache T=" + tokens + " H=" + heads + " Hkv=" + kvHeads + " d=" + d + " r=" + rotaryDim + " norm=" + qkNorm;
        long seed = tokens * 31L + heads * 7L + d + rotaryDim + (qkNorm ? 1 : 0);
        int qkvDim = (heads + 2 * kvHeads) * d;
        int kvDim = kvHeads * d;
        int maxPos = 2 * tokens + 9;
        int cacheRows = tokens + 5;
        RotaryEmbedding rotary = new RotaryEmbedding(rotaryDim, 600000.0, null);
        float[][] tables = QkNormRopeCache.ropeTables(rotary, maxPos);
        float[] qkv = randomFloats(seed, tokens * qkvDim, 3f); // (T, (H + 2·Hkv)·d)
        short[] qNorm = randomBf16(seed + 1, d, 0.5f);
        short[] kNorm = randomBf16(seed + 2, d, 0.5f);
        for (int i = 0; i < d; i++) {
            qNorm[i] = Bf16.fromFloat(1 + Bf16.toFloat(qNorm[i]));
            kNorm[i] = Bf16.fromFloat(1 + Bf16.toFloat(kNorm[i]));
        }
        int[] positions = randomInts(seed + 3, tokens, maxPos);
        int[] slots = shuffledSlots(seed + 4, tokens, cacheRows);
        if (tokens > 2) {
            slots[1] = -1; // padding row: K/V not written
        }

        // reference
        float[] expectedQ = new float[tokens * heads * d];
        float[] expectedK = new float[cacheRows * kvDim];
        float[] expectedV = new float[cacheRows * kvDim];
        Arrays.fill(expectedK, Float.NaN);
        Arrays.fill(expectedV, Float.NaN);
        float[] cos = new float[rotaryDim / 2];
        float[] sin = new float[rotaryDim / 2];
        for (int t = 0; t < tokens; t++) {
            float[] q = Arrays.copyOfRange(qkv, t * qkvDim, t * qkvDim + heads * d);
            float[] k = Arrays.copyOfRange(qkv, t * qkvDim + heads * d, t * qkvDim + heads * d + kvDim);
            if (qkNorm) {
                ReferenceOps.rmsnorm(q, q, Bf16.toFloat(qNorm), heads, d, EPS);
                ReferenceOps.rmsnorm(k, k, Bf16.toFloat(kNorm), kvHeads, d, EPS);
            }
            rotary.angles(positions[t], cos, sin);
            for (int h = 0; h < heads; h++) {
                ReferenceOps.rope(q, h * d, cos, sin, rotaryDim);
            }
            for (int h = 0; h < kvHeads; h++) {
                ReferenceOps.rope(k, h * d, cos, sin, rotaryDim);
            }
            System.arraycopy(q, 0, expectedQ, t * heads * d, heads * d);
            if (slots[t] >= 0) {
                System.arraycopy(Bf16.round(k), 0, expectedK, slots[t] * kvDim, kvDim);
                for (int i = 0; i < kvDim; i++) {
                    expectedV[slots[t] * kvDim + i] = Bf16.round(qkv[t * qkvDim + heads * d + kvDim + i]);
                }
            }
        }

        try (DeviceBuffer dQkv = upload(qkv); DeviceBuffer dPos = upload(positions); DeviceBuffer dSlots = upload(slots);
             DeviceBuffer dCos = upload(tables[0]); DeviceBuffer dSin = upload(tables[1]); DeviceBuffer dQn = upload(qNorm);
             DeviceBuffer dKn = upload(kNorm); DeviceBuffer qOut = poisoned(4L * tokens * heads * d);
             DeviceBuffer kCache = poisoned(2L * cacheRows * kvDim); DeviceBuffer vCache = poisoned(2L * cacheRows * kvDim)) {
            op.launch(device().stream(), dQkv, dPos, dSlots, dCos, dSin, qkNorm ? dQn : null, qkNorm ? dKn : null, qOut, kCache, vCache,
                    tokens, heads, kvHeads, d, rotaryDim, maxPos, cacheRows, EPS);
            assertClose(what + " q", expectedQ, downloadFloats(qOut, tokens * heads * d), 1e-5, 1e-4);
            float[] gotK = downloadBf16(kCache, cacheRows * kvDim);
            float[] gotV = downloadBf16(vCache, cacheRows * kvDim);
            // rows no token wrote stay poisoned (NaN); the written rows are compared below
            boolean[] written = new boolean[cacheRows];
            int count = 0;
            for (int slot : slots) {
                if (slot >= 0) {
                    written[slot] = true;
                    count++;
                }
            }
            float[] wantK = new float[count * kvDim];
            float[] wantV = new float[count * kvDim];
            float[] haveK = new float[count * kvDim];
            float[] haveV = new float[count * kvDim];
            for (int row = 0, n = 0; row < cacheRows; row++) {
                if (!written[row]) {
                    for (int i = 0; i < kvDim; i++) {
                        if (!Float.isNaN(gotK[row * kvDim + i]) || !Float.isNaN(gotV[row * kvDim + i])) {
                            org.junit.jupiter.api.Assertions.fail(what + ": cache row " + row + " was written but belongs to no token");
                        }
                    }
                    continue;
                }
                System.arraycopy(expectedK, row * kvDim, wantK, n * kvDim, kvDim);
                System.arraycopy(expectedV, row * kvDim, wantV, n * kvDim, kvDim);
                System.arraycopy(gotK, row * kvDim, haveK, n * kvDim, kvDim);
                System.arraycopy(gotV, row * kvDim, haveV, n * kvDim, kvDim);
                n++;
            }
            // bf16 outputs: k equals the rounded reference but for rare rounding flips (one bf16 ulp); v is exact
            assertClose(what + " k cache", wantK, haveK, 2e-3, 0.05);
            assertClose(what + " v cache", wantV, haveV, 0, 0);
        }
    }

    /** Distinct cache rows in random order. */
    static int[] shuffledSlots(long seed, int n, int rows) {
        int[] all = new int[rows];
        for (int i = 0; i < rows; i++) {
            all[i] = i;
        }
        int[] r = randomInts(seed, rows, Integer.MAX_VALUE);
        for (int i = rows - 1; i > 0; i--) {
            int j = r[i] % (i + 1);
            int tmp = all[i];
            all[i] = all[j];
            all[j] = tmp;
        }
        return Arrays.copyOf(all, n);
    }
}
