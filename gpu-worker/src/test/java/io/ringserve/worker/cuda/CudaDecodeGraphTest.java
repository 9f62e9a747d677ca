package io.ringserve.worker.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.ringserve.model.config.ModelConfig;
import io.ringserve.model.sampling.SamplingParams;
import io.ringserve.worker.engine.Sampler;
import io.ringserve.worker.engine.StepRunner.Sampled;
import io.ringserve.worker.engine.StepRunner.Sampling;
import io.ringserve.worker.engine.StepRunner.StepEntry;
import io.ringserve.worker.reference.Golden;
import io.ringserve.worker.weights.SafetensorsCheckpoint;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;

/**
 * Decode steps replayed as CUDA graphs against the same steps run eagerly, bit for bit (sampled ids, logprobs and
 * every logit), on the tiny Ring fixture; the shared expert on a second stream against one stream; a batch whose
 * size changes between steps switching buckets; and the warm-up capture of every bucket.
 */
class CudaDecodeGraphTest extends GpuTestSupport {
    private static final String FIXTURE = "tiny-ring-a";
    private static final int BLOCK = 16;
    private static final int BLOCKS_PER_SEQ = 4; // 64 positions: prompts up to 31 tokens plus the decode steps
    private static final int MAX_SEQS = 8;

    /** What one step gave: per entry the token and logprob bits, the logits (N, V), the bucket (0: eager). */
    private record Step(int[] tokens, int[] logprobBits, float[] logits, int bucket) {
    }

    private static CudaWeights load(ModelConfig config) {
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(Golden.dir(FIXTURE))) {
            return CudaWeights.load(device(), config, ckpt, null);
        }
    }

    /**
     * Prefills {@code seqs} sequences in one (eager) step, then runs one decode step per entry of {@code schedule}
     * (the sequences taking part in it). Sequence i: a seeded prompt of 3 + 4i tokens, its own KV blocks in reverse
     * order, greedy or (every third) seeded random sampling drawn on the GPU, logprobs asked for. The runner's KV
     * is allocated ({@link #allocate}).
     */
    private static List<Step> run(CudaRunner runner, int seqs, int[][] schedule) {
        int[][] history = new int[seqs][];
        int[] length = new int[seqs];
        int[] promptLength = new int[seqs];
        int[][] tables = new int[seqs][BLOCKS_PER_SEQ];
        SamplingParams[] params = new SamplingParams[seqs];
        for (int i = 0; i < seqs; i++) {
            int[] prompt = Golden.randomPrompt(100 + i, 3 + 4 * i);
            history[i] = Arrays.copyOf(prompt, 64);
            length[i] = prompt.length;
            promptLength[i] = prompt.length;
            for (int b = 0; b < BLOCKS_PER_SEQ; b++) {
                tables[i][b] = (i + 1) * BLOCKS_PER_SEQ - 1 - b;
            }
            params[i] = i % 3 == 2 ? new SamplingParams(0.8, 20, 0.9, 0.02, 1, 0, 0, 1000 + i) : SamplingParams.greedy();
        }
        List<Step> steps = new ArrayList<>();
        List<StepEntry> prefill = new ArrayList<>();
        for (int i = 0; i < seqs; i++) {
            prefill.add(new StepEntry(i, Arrays.copyOf(history[i], length[i]), 0, tables[i], sampling(params[i], history[i], length[i], promptLength[i])));
        }
        steps.add(step(runner, prefill, IntStream.range(0, seqs).toArray(), history, length));
        for (int[] active : schedule) {
            List<StepEntry> batch = new ArrayList<>();
            for (int i : active) {
                int position = length[i] - 1; // the last sampled token goes in now
                batch.add(new StepEntry(i, new int[] {history[i][position]}, position, tables[i], sampling(params[i], history[i], length[i], promptLength[i])));
            }
            steps.add(step(runner, batch, active, history, length));
        }
        return steps;
    }

    private static void allocate(CudaRunner runner) {
        runner.allocateKv(BLOCK, MAX_SEQS * BLOCKS_PER_SEQ);
    }

    private static Sampling sampling(SamplingParams p, int[] history, int length, int promptLength) {
        return new Sampling(Sampler.of(p), history, length, promptLength, 0);
    }

    private static Step step(CudaRunner runner, List<StepEntry> batch, int[] seqIds, int[][] history, int[] length) {
        Sampled[] out = runner.step(batch);
        int[] tokens = new int[out.length];
        int[] logprobs = new int[out.length];
        for (int j = 0; j < out.length; j++) {
            tokens[j] = out[j].token();
            logprobs[j] = Float.floatToRawIntBits(out[j].logprob());
            int i = seqIds[j];
            history[i][length[i]++] = out[j].token();
        }
        return new Step(tokens, logprobs, runner.lastLogits(), runner.lastBucket());
    }

    private static void assertSameSteps(String what, List<Step> expected, List<Step> actual) {
        assertEquals(expected.size(), actual.size());
        for (int s = 0; s < expected.size(); s++) {
            String at = what + ", step " + s;
            assertArrayEquals(expected.get(s).tokens(), actual.get(s).tokens(), at + ": sampled ids");
            assertArrayEquals(expected.get(s).logprobBits(), actual.get(s).logprobBits(), at + ": logprobs");
            assertBitExact(at + ": logits", expected.get(s).logits(), actual.get(s).logits());
        }
    }

    private static int[] buckets(List<Step> steps) {
        return steps.stream().mapToInt(Step::bucket).toArray();
    }

    private static int[][] allFor(int seqs, int decodeSteps) {
        int[][] schedule = new int[decodeSteps][];
        for (int s = 0; s < decodeSteps; s++) {
            schedule[s] = IntStream.range(0, seqs).toArray();
        }
        return schedule;
    }

    private static List<Step> run(CudaWeights weights, boolean graphs, boolean dual, int seqs, int[][] schedule) {
        CudaRunner runner = new CudaRunner(device(), weights, graphs, dual);
        try {
            assertEquals(graphs, runner.graphs());
            assertEquals(dual, runner.dualStream()); // the fixture has a shared expert
            allocate(runner);
            return run(runner, seqs, schedule);
        } finally {
            runner.close();
        }
    }

    @GpuTest(emulated = true)
    void graphReplayEqualsEagerBitForBit() {
        ModelConfig config = ModelConfig.load(Golden.dir(FIXTURE));
        try (CudaWeights weights = load(config)) {
            for (int[] batch : new int[][] {{1, 1}, {3, 4}, {8, 8}}) {
                int seqs = batch[0];
                int[][] schedule = allFor(seqs, 6);
                List<Step> eager = run(weights, false, true, seqs, schedule);
                List<Step> graph = run(weights, true, true, seqs, schedule);
                assertSameSteps("batch " + seqs, eager, graph);
                int[] want = new int[schedule.length + 1];
                Arrays.fill(want, 1, want.length, batch[1]); // the prefill runs eagerly, every decode step replays
                assertArrayEquals(want, buckets(graph), "batch " + seqs + ": buckets");
                assertArrayEquals(new int[want.length], buckets(eager));
            }
        }
    }

    @GpuTest(emulated = true)
    void sharedExpertOnASecondStreamChangesNoBit() {
        ModelConfig config = ModelConfig.load(Golden.dir(FIXTURE));
        try (CudaWeights weights = load(config)) {
            int[][] schedule = allFor(3, 4);
            for (boolean graphs : new boolean[] {false, true}) {
                List<Step> one = run(weights, graphs, false, 3, schedule);
                List<Step> two = run(weights, graphs, true, 3, schedule);
                assertSameSteps("graphs " + graphs, one, two);
            }
        }
    }

    @GpuTest(emulated = true)
    void aBatchThatChangesSizeSwitchesBuckets() {
        ModelConfig config = ModelConfig.load(Golden.dir(FIXTURE));
        int[][] schedule = {
                {0, 1, 2, 3, 4, 5, 6, 7}, // 8 -> bucket 8
                {0, 1, 2, 3, 4},          // 5 -> 8
                {0, 2, 4},                // 3 -> 4
                {1},                      // 1 -> 1
                {0, 1, 2, 3, 4, 5, 6, 7}, // 8 -> 8 again (the graph captured first)
                {5, 6},                   // 2 -> 2
                {7, 0, 3},                // 3 -> 4 again, another order
        };
        try (CudaWeights weights = load(config)) {
            List<Step> eager = run(weights, false, true, 8, schedule);
            List<Step> graph = run(weights, true, true, 8, schedule);
            assertSameSteps("changing batch", eager, graph);
            assertArrayEquals(new int[] {0, 8, 8, 4, 1, 8, 2, 4}, buckets(graph));
        }
    }

    @GpuTest(emulated = true)
    void captureGraphsWarmsEveryBucketUpFront() {
        ModelConfig config = ModelConfig.load(Golden.dir(FIXTURE));
        int[][] schedule = {{0, 1, 2, 3, 4, 5}, {0, 1, 2, 3, 4}, {0, 1, 2}, {4}};
        try (CudaWeights weights = load(config)) {
            List<Step> eager = run(weights, false, true, 6, schedule);
            CudaRunner runner = new CudaRunner(device(), weights, true, true);
            try {
                allocate(runner);
                assertEquals(4, runner.captureGraphs(6), "buckets 1, 2, 4 and 6");
                assertEquals(4, runner.graphCount());
                List<Step> graph = run(runner, 6, schedule);
                assertSameSteps("warmed up", eager, graph);
                assertArrayEquals(new int[] {0, 6, 6, 4, 1}, buckets(graph));
                assertEquals(4, runner.graphCount(), "no capture after the warm-up");
            } finally {
                runner.close();
            }
        }
    }

    @GpuTest(emulated = true)
    void anEagerRunnerCapturesNothing() {
        ModelConfig config = ModelConfig.load(Golden.dir(FIXTURE));
        try (CudaWeights weights = load(config)) {
            CudaRunner runner = new CudaRunner(device(), weights, false, false);
            try {
                allocate(runner);
                assertEquals(0, runner.captureGraphs(8));
                List<Step> steps = run(runner, 2, allFor(2, 2));
                assertTrue(steps.stream().allMatch(s -> s.bucket() == 0));
                assertEquals(0, runner.graphCount());
            } finally {
                runner.close();
            }
        }
    }
}
