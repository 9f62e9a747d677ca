package io.ringserve.worker.cuda.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.ringserve.model.sampling.SamplingParams;
import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.GpuTest;
import io.ringserve.worker.cuda.GpuTestSupport;
import io.ringserve.worker.engine.Logprobs;
import io.ringserve.worker.engine.Sampler;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * sample.cu against engine.Sampler: greedy ids exactly as Sampler.argmax (ties, NaN, −0.0, the real vocab size);
 * random draws only inside the set Sampler.Random keeps (top-k, top-p, min-p in its order, computed here from
 * Sampler.descendingOrder as Random does) and with its renormalised frequencies; the same seed and step give the
 * same token; penalties as Sampler.Penalties (through Sampler.Greedy, which applies them in place).
 */
class SampleTest extends GpuTestSupport {
    private static final int VOCAB = 157184;

    @GpuTest
    void greedyEqualsTheHostArgmax() {
        Sample op = new Sample(device());
        int rows = 7;
        float[] logits = new float[rows * VOCAB];
        SplittableRandom r = new SplittableRandom(5);
        for (int i = 0; i < logits.length; i++) {
            logits[i] = Math.round(r.nextGaussian() * 8) / 2f; // many exact ties at the top
        }
        logits[VOCAB] = Float.NaN;                               // row 1: NaN at id 0 wins
        logits[2 * VOCAB + 5] = Float.NaN;                       // row 2: NaN elsewhere never wins
        Arrays.fill(logits, 3 * VOCAB, 4 * VOCAB, Float.NEGATIVE_INFINITY); // row 3: id 0
        Arrays.fill(logits, 4 * VOCAB, 5 * VOCAB, 0f);
        logits[4 * VOCAB] = -0.0f;                               // row 4: -0.0 ties 0.0, id 0
        logits[6 * VOCAB - 1] = 1e30f;                           // row 5: the last id
        int[] expected = new int[rows];
        float[] expectedLogprob = new float[rows];
        for (int b = 0; b < rows; b++) {
            float[] row = Arrays.copyOfRange(logits, b * VOCAB, (b + 1) * VOCAB);
            expected[b] = Sampler.argmax(row);
            expectedLogprob[b] = (float) (row[expected[b]] - Logprobs.logSumExp(row));
        }
        float[] temperature = new float[rows];
        int[] got = new int[rows];
        float[] logprobs = run(op, logits, rows, VOCAB, temperature, new int[rows], filled(rows, 1f), new float[rows], 1, 0, got);
        assertArrayEquals(expected, got, "greedy ids");
        int[] finite = {0, 4, 5, 6};
        for (int b : finite) {
            assertClose("greedy logprob row " + b, new float[] {expectedLogprob[b]}, new float[] {logprobs[b]}, 1e-5, 1e-4);
        }
    }

    @GpuTest
    void randomDrawsStayInsideTheTruncatedSetWithItsFrequencies() {
        Sample op = new Sample(device());
        float[] base = randomFloats(11, 1000, 5f);
        check(op, "plain", base, 1f, 0, 1f, 0f);
        check(op, "top-k", base, 0.7f, 5, 1f, 0f);
        check(op, "top-p", base, 0.6f, 0, 0.9f, 0f);
        check(op, "min-p", base, 1f, 0, 1f, 0.2f);
        check(op, "all", base, 1.3f, 20, 0.8f, 0.05f);
        float[] ties = new float[300];
        for (int i = 0; i < ties.length; i++) {
            ties[i] = i % 4 == 0 ? 2f : 1f;
        }
        check(op, "top-k boundary inside a tie", ties, 1f, 10, 1f, 0f);
        check(op, "top-p boundary inside a tie", ties, 1f, 0, 0.05f, 0f);
        float[] big = randomFloats(12, VOCAB, 6f);
        check(op, "real vocab", big, 0.8f, 50, 0.95f, 0f);
    }

    @GpuTest
    void penaltiesMatchTheHostSampler() {
        Sample op = new Sample(device());
        int rows = 3;
        int vocab = 5003;
        int tableRows = 4;
        float[] logits = randomFloats(21, rows * vocab, 4f);
        int[] penaltyRows = {2, -1, 0};
        float[] repetition = {1.3f, 1.5f, 0.8f};
        float[] presence = {0.5f, 1f, -0.25f};
        float[] frequency = {0.25f, 1f, 0.5f};
        byte[] promptMask = new byte[tableRows * vocab];
        int[] counts = new int[tableRows * vocab];
        int[][] prompts = new int[tableRows][];
        int[][] outputs = new int[tableRows][];
        for (int s = 0; s < tableRows; s++) {
            prompts[s] = randomInts(30 + s, 40, vocab);
            outputs[s] = randomInts(40 + s, 25, 300); // repeats
            for (int id : prompts[s]) {
                promptMask[s * vocab + id] = 1;
            }
            for (int id : outputs[s]) {
                counts[s * vocab + id]++;
            }
        }
        float[] expected = logits.clone();
        for (int b = 0; b < rows; b++) {
            int s = penaltyRows[b];
            if (s < 0) {
                continue;
            }
            float[] row = Arrays.copyOfRange(expected, b * vocab, (b + 1) * vocab);
            int[] history = new int[prompts[s].length + outputs[s].length];
            System.arraycopy(prompts[s], 0, history, 0, prompts[s].length);
            System.arraycopy(outputs[s], 0, history, prompts[s].length, outputs[s].length);
            SamplingParams p = new SamplingParams(0, 0, 1, 0, repetition[b], presence[b], frequency[b], 0);
            new Sampler.Greedy(p).sample(row, history, history.length, prompts[s].length); // applies the penalties in place
            System.arraycopy(row, 0, expected, b * vocab, vocab);
        }
        try (DeviceBuffer in = upload(logits); DeviceBuffer out = poisoned(4L * rows * vocab); DeviceBuffer dRows = upload(penaltyRows);
             DeviceBuffer mask = device().alloc(promptMask.length); DeviceBuffer dCounts = upload(counts); DeviceBuffer rep = upload(repetition);
             DeviceBuffer pres = upload(presence); DeviceBuffer freq = upload(frequency); DeviceBuffer ids = upload(new int[] {7, 8, vocab - 1})) {
            mask.copyFromHost(promptMask);
            op.applyPenalties(device().stream(), in, out, dRows, mask, dCounts, rep, pres, freq, rows, vocab, tableRows);
            assertClose("apply_penalties", expected, downloadFloats(out, rows * vocab), 1e-6, 1e-5);
            op.countTokens(device().stream(), ids, dRows, dCounts, rows, vocab, tableRows);
            int[] after = new int[counts.length];
            dCounts.copyToHost(after);
            counts[2 * vocab + 7]++;
            counts[vocab - 1]++;
            assertArrayEquals(counts, after, "count_tokens");
        }
    }

    /** Draws `n` samples of one row (as n rows with steps 0..n−1) and checks them against Sampler.Random's kept set. */
    private static void check(Sample op, String what, float[] row, float temperature, int topK, float topP, float minP) {
        int vocab = row.length;
        int n = vocab > 10000 ? 200 : 4000;
        float[] logits = new float[n * vocab];
        for (int i = 0; i < n; i++) {
            System.arraycopy(row, 0, logits, i * vocab, vocab);
        }
        int[] got = new int[n];
        run(op, logits, n, vocab, filled(n, temperature), filledInt(n, topK), filled(n, topP), filled(n, minP), 0x1234567890abcdefL, 0, got);
        double[] probs = new double[vocab]; // renormalised over the kept set, 0 elsewhere
        keptProbabilities(row, temperature, topK, topP, minP, probs);
        int[] hits = new int[vocab];
        for (int id : got) {
            assertTrue(id >= 0 && id < vocab && probs[id] > 0, what + ": drew id " + id + ", outside the kept set");
            hits[id]++;
        }
        for (int id = 0; id < vocab; id++) {
            if (probs[id] > 0) {
                double mean = n * probs[id];
                double sd = Math.max(1, Math.sqrt(n * probs[id] * (1 - probs[id])));
                assertTrue(Math.abs(hits[id] - mean) <= 6 * sd, what + ": id " + id + " drawn " + hits[id] + " times, expected " + mean);
            }
        }
        int[] again = new int[3];
        run(op, Arrays.copyOf(logits, 3 * vocab), 3, vocab, filled(3, temperature), filledInt(3, topK), filled(3, topP), filled(3, minP),
                0x1234567890abcdefL, 0, again);
        assertArrayEquals(Arrays.copyOf(got, 3), again, what + ": the same seed and step must give the same token");
    }

    /** Sampler.Random's truncation ({@link Sampler#truncate}), as the probabilities it draws from, by id. */
    private static void keptProbabilities(float[] logits, double temperature, int topK, double topP, double minP, double[] out) {
        Sampler.Kept kept = Sampler.truncate(logits, temperature, topK, topP, minP);
        for (int i = 0; i < kept.size(); i++) {
            out[kept.order()[i]] = kept.probs()[i] / kept.total();
        }
    }

    /** Runs sample_tokens; seeds all {@code seed}, steps firstStep, firstStep+1, ...; returns the logprobs. */
    private static float[] run(Sample op, float[] logits, int rows, int vocab, float[] temperature, int[] topK, float[] topP, float[] minP,
                               long seed, long firstStep, int[] outIds) {
        int[] seeds = new int[2 * rows];
        int[] steps = new int[2 * rows];
        for (int b = 0; b < rows; b++) {
            seeds[2 * b] = (int) seed;
            seeds[2 * b + 1] = (int) (seed >>> 32);
            long step = firstStep + b;
            steps[2 * b] = (int) step;
            steps[2 * b + 1] = (int) (step >>> 32);
        }
        try (DeviceBuffer dl = upload(logits); DeviceBuffer t = upload(temperature); DeviceBuffer k = upload(topK); DeviceBuffer p = upload(topP);
             DeviceBuffer m = upload(minP); DeviceBuffer ds = upload(seeds); DeviceBuffer dst = upload(steps); DeviceBuffer ids = poisoned(4L * rows);
             DeviceBuffer lp = poisoned(4L * rows)) {
            op.sample(device().stream(), dl, dl, t, k, p, m, ds, dst, ids, lp, rows, vocab);
            ids.copyToHost(outIds);
            return downloadFloats(lp, rows);
        }
    }

    private static float[] filled(int n, float v) {
        float[] a = new float[n];
        Arrays.fill(a, v);
        return a;
    }

    private static int[] filledInt(int n, int v) {
        int[] a = new int[n];
        Arrays.fill(a, v);
        return a;
    }
}
