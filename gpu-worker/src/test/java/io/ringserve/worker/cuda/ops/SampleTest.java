package io.ringserve.worker.cuda.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
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
 * same token; penalties as Sampler.Penalties (through Sampler.Greedy, which applies them in place). Greedy ids and
 * logprobs go through sample_partials' chunks of {@link Sample#CHUNK} logits: ties, NaN and infinities across chunk
 * boundaries, a vocab that is neither a multiple of the chunk nor of 4 (rows at every 16-byte phase), misaligned
 * logits and raw logits. Logprobs: within 1e-5 of Logprobs.logSumExp's (fp32 rounding of the chunked sum), NaN
 * exactly where the host's is NaN.
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
    void greedyAndLogprobsAcrossChunkBoundaries() {
        Sample op = new Sample(device());
        int chunk = Sample.CHUNK;
        int vocab = 3 * chunk + 3; // 4 chunks, the last of 3 logits; odd, so the rows start at every 16-byte phase
        int rows = 10;
        float[] raw = new float[rows * vocab];
        SplittableRandom r = new SplittableRandom(17);
        for (int i = 0; i < raw.length; i++) {
            raw[i] = Math.round(r.nextGaussian() * 6) / 2f; // many exact ties
        }
        setRow(raw, vocab, 0, chunk + 7, 50f);
        setRow(raw, vocab, 0, 3 * chunk + 1, 50f);              // row 0: a tie in chunks 1 and 3: the lower id
        setRow(raw, vocab, 1, chunk - 1, 50f);
        setRow(raw, vocab, 1, chunk, 50f);                      // row 1: a tie on both sides of a boundary
        setRow(raw, vocab, 2, vocab - 1, 50f);
        setRow(raw, vocab, 2, 2 * chunk, 50f);                  // row 2: the tail chunk ties the first of chunk 2
        setRow(raw, vocab, 3, 0, Float.NaN);
        setRow(raw, vocab, 3, 2 * chunk + 5, 1e30f);            // row 3: NaN at id 0 wins
        setRow(raw, vocab, 4, chunk, Float.NaN);
        setRow(raw, vocab, 4, vocab - 1, Float.NaN);
        setRow(raw, vocab, 4, 2 * chunk + 9, 40f);              // row 4: NaN elsewhere never wins
        Arrays.fill(raw, 5 * vocab, 6 * vocab, Float.NEGATIVE_INFINITY); // row 5: all -inf: id 0, logprob NaN
        Arrays.fill(raw, 6 * vocab + chunk, 6 * vocab + 2 * chunk, Float.NEGATIVE_INFINITY); // row 6: chunk 1 all -inf
        setRow(raw, vocab, 7, 3000, Float.POSITIVE_INFINITY);
        setRow(raw, vocab, 7, 5000, Float.POSITIVE_INFINITY);   // row 7: +inf twice: the lower id, logprob NaN
        Arrays.fill(raw, 8 * vocab, 9 * vocab, -3f);
        setRow(raw, vocab, 8, chunk + 2, -0.0f);
        setRow(raw, vocab, 8, 2 * chunk + 2, 0.0f);             // row 8: -0.0 ties 0.0 across chunks
        setRow(raw, vocab, 9, vocab - 2, 1e4f);                 // row 9: the tail chunk's max, a huge logprob gap
        // the logits chosen from: the raw ones, shifted in a way that moves some argmaxes (penalties would)
        float[] logits = raw.clone();
        for (int b = 0; b < rows; b++) {
            logits[b * vocab + 2 * chunk + 100] += b == 6 ? 100f : 0f; // row 6 picks from the logits, scores by raw
        }
        int[] expected = new int[rows];
        float[] expectedLogprob = new float[rows];
        for (int b = 0; b < rows; b++) {
            float[] row = Arrays.copyOfRange(logits, b * vocab, (b + 1) * vocab);
            float[] rawRow = Arrays.copyOfRange(raw, b * vocab, (b + 1) * vocab);
            expected[b] = Sampler.argmax(row);
            expectedLogprob[b] = (float) (rawRow[expected[b]] - Logprobs.logSumExp(rawRow));
        }
        assertEquals(chunk + 7, expected[0]);
        assertEquals(chunk - 1, expected[1]);
        assertEquals(2 * chunk, expected[2]);
        assertEquals(0, expected[3]);
        assertEquals(2 * chunk + 9, expected[4]);
        assertEquals(2 * chunk + 100, expected[6]);
        assertEquals(3000, expected[7]);
        assertEquals(chunk + 2, expected[8]);
        assertEquals(vocab - 2, expected[9]);
        float[] zeros = new float[rows];
        int[] ids = new int[rows];
        // logits == raw logits (the unshifted ones), aligned base
        float[] lp = run(op, raw, rows, vocab, zeros, new int[rows], filled(rows, 1f), zeros, 1, 0, ids);
        int[] sameExpected = new int[rows];
        float[] sameLogprob = new float[rows];
        for (int b = 0; b < rows; b++) {
            float[] row = Arrays.copyOfRange(raw, b * vocab, (b + 1) * vocab);
            sameExpected[b] = Sampler.argmax(row);
            sameLogprob[b] = (float) (row[sameExpected[b]] - Logprobs.logSumExp(row));
        }
        assertArrayEquals(sameExpected, ids, "greedy ids, logits = raw logits");
        assertLogprobs("logits = raw logits", sameLogprob, lp);
        // separate logits and raw logits, both misaligned (4 and 8 bytes past a 16-byte boundary, different phases),
        // with and without logprobs
        for (boolean withLogprobs : new boolean[] {true, false}) {
            float[] paddedLogits = new float[2 + logits.length];
            System.arraycopy(logits, 0, paddedLogits, 2, logits.length);
            float[] paddedRaw = new float[1 + raw.length];
            System.arraycopy(raw, 0, paddedRaw, 1, raw.length);
            try (DeviceBuffer dl = upload(paddedLogits); DeviceBuffer dr = upload(paddedRaw); DeviceBuffer t = upload(zeros);
                 DeviceBuffer k = upload(new int[rows]); DeviceBuffer p = upload(filled(rows, 1f)); DeviceBuffer m = upload(zeros);
                 DeviceBuffer ds = upload(new int[2 * rows]); DeviceBuffer dst = upload(new int[2 * rows]); DeviceBuffer dIds = poisoned(4L * rows);
                 DeviceBuffer dLp = poisoned(4L * rows); DeviceBuffer ws = poisoned(Sample.workspaceBytes(rows, vocab))) {
                op.sample(device().stream(), dl.slice(8, 4L * rows * vocab), dr.slice(4, 4L * rows * vocab), t, k, p, m, ds, dst, dIds,
                        withLogprobs ? dLp : null, ws, rows, vocab);
                dIds.copyToHost(ids);
                assertArrayEquals(expected, ids, "greedy ids, misaligned logits and raw logits, logprobs " + withLogprobs);
                if (withLogprobs) {
                    assertLogprobs("misaligned logits and raw logits", expectedLogprob, downloadFloats(dLp, rows));
                }
            }
        }
    }

    private static void setRow(float[] a, int vocab, int row, int id, float v) {
        a[row * vocab + id] = v;
    }

    /** Within 1e-5 (abs) of the host's logprob where it is finite, NaN where it is NaN. */
    private static void assertLogprobs(String what, float[] expected, float[] actual) {
        for (int b = 0; b < expected.length; b++) {
            if (Float.isNaN(expected[b])) {
                assertTrue(Float.isNaN(actual[b]), what + ": row " + b + " logprob " + actual[b] + ", expected NaN");
            } else {
                assertClose(what + ": logprob row " + b, new float[] {expected[b]}, new float[] {actual[b]}, 1e-5, 1e-5);
            }
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
             DeviceBuffer lp = poisoned(4L * rows); DeviceBuffer ws = poisoned(Sample.workspaceBytes(rows, vocab))) {
            op.sample(device().stream(), dl, dl, t, k, p, m, ds, dst, ids, lp, ws, rows, vocab);
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
