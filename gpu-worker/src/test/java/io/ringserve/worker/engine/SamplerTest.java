package io.ringserve.worker.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.ringserve.model.sampling.SamplingParams;
import java.util.HashSet;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class SamplerTest {
    static final float[] LOGITS = {1.0f, 3.0f, 2.5f, -1.0f, 3.0f, 0.0f};

    static int draw(Sampler s, float[] logits) {
        return s.sample(logits.clone(), new int[0], 0, 0);
    }

    @Test
    void greedyTakesTheLowestIdAmongEqualMaxima() {
        assertEquals(1, draw(Sampler.of(SamplingParams.greedy()), LOGITS));
    }

    @Test
    void topKOfOneIsGreedyWhateverTheTemperature() {
        Sampler s = Sampler.of(new SamplingParams(5.0, 1, 1, 0, 1, 0, 0, 99));
        for (int i = 0; i < 50; i++) {
            assertEquals(1, draw(s, LOGITS));
        }
    }

    @Test
    void topPKeepsOnlyTheSmallestSetReachingP() {
        Sampler s = Sampler.of(new SamplingParams(1.0, 0, 0.5, 0, 1, 0, 0, 1));
        Set<Integer> seen = new HashSet<>();
        for (int i = 0; i < 300; i++) {
            seen.add(draw(s, LOGITS));
        }
        // p(1) = p(4) ≈ 0.35 each: {1, 4} reaches 0.5, nothing else may appear
        assertEquals(Set.of(1, 4), seen);
    }

    @Test
    void minPDropsUnlikelyTokens() {
        Sampler s = Sampler.of(new SamplingParams(1.0, 0, 1, 0.5, 1, 0, 0, 3));
        Set<Integer> seen = new HashSet<>();
        for (int i = 0; i < 300; i++) {
            seen.add(draw(s, LOGITS));
        }
        assertEquals(Set.of(1, 2, 4), seen); // e^2.5 / e^3 ≈ 0.61 ≥ 0.5; e^1/e^3 < 0.5
    }

    @Test
    void sameSeedSameDraws() {
        SamplingParams p = new SamplingParams(1.0, 0, 1, 0, 1, 0, 0, 42);
        Sampler a = Sampler.of(p);
        Sampler b = Sampler.of(p);
        StringBuilder sa = new StringBuilder();
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 64; i++) {
            sa.append(draw(a, LOGITS));
            sb.append(draw(b, LOGITS));
        }
        assertEquals(sa.toString(), sb.toString());
        Sampler c = Sampler.of(new SamplingParams(1.0, 0, 1, 0, 1, 0, 0, 43));
        StringBuilder sc = new StringBuilder();
        for (int i = 0; i < 64; i++) {
            sc.append(draw(c, LOGITS));
        }
        assertNotEquals(sa.toString(), sc.toString());
    }

    @Test
    void penaltiesDiscourageTokensAlreadyGenerated() {
        float[] logits = {2.0f, 1.9f, -5f};
        // token 0 was generated twice: frequency penalty 0.5 lowers it by 1.0 → token 1 wins
        Sampler s = Sampler.of(new SamplingParams(0, 0, 1, 0, 1, 0, 0.5, 0));
        assertEquals(1, s.sample(logits.clone(), new int[] {2, 0, 0}, 3, 1));
        // repetition penalty divides a positive logit: 2.0 / 1.2 < 1.9
        Sampler r = Sampler.of(new SamplingParams(0, 0, 1, 0, 1.2, 0, 0, 0));
        assertEquals(1, r.sample(logits.clone(), new int[] {0}, 1, 1));
        // without history nothing changes
        assertEquals(0, r.sample(logits.clone(), new int[0], 0, 0));
    }

    @Test
    void invalidParametersAreRejectedNamingTheParameter() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new SamplingParams(-1, 0, 1, 0, 1, 0, 0, 0));
        assertTrue(e.getMessage().startsWith("temperature"));
        e = assertThrows(IllegalArgumentException.class, () -> new SamplingParams(1, 0, 0, 0, 1, 0, 0, 0));
        assertTrue(e.getMessage().startsWith("top_p"));
    }

    @Test
    void candidatesAreOrderedByLogitThenByIdEvenWithTiesZerosAndNaN() {
        SplittableRandom rng = new SplittableRandom(11);
        for (int round = 0; round < 50; round++) {
            float[] logits = new float[1 + rng.nextInt(3000)];
            for (int i = 0; i < logits.length; i++) {
                logits[i] = switch (rng.nextInt(10)) {
                    case 0 -> 0.0f;
                    case 1 -> -0.0f;
                    case 2 -> Float.NaN;
                    case 3 -> Float.NEGATIVE_INFINITY;
                    case 4 -> Float.POSITIVE_INFINITY;
                    case 5 -> 1.5f; // many exact ties
                    default -> (float) rng.nextGaussian() * 8;
                };
            }
            Integer[] expected = new Integer[logits.length];
            for (int i = 0; i < logits.length; i++) {
                expected[i] = i;
            }
            java.util.Arrays.sort(expected,
                    (a, b) -> logits[b] != logits[a] ? Float.compare(logits[b], logits[a]) : Integer.compare(a, b));
            assertArrayEquals(java.util.Arrays.stream(expected).mapToInt(Integer::intValue).toArray(), Sampler.descendingOrder(logits));
        }
    }
}
