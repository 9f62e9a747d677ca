package io.ringserve.worker.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.ringserve.model.config.ModelConfig;
import io.ringserve.model.sampling.SamplingParams;
import io.ringserve.worker.cuda.KernelProfile.Op;
import io.ringserve.worker.engine.Sampler;
import io.ringserve.worker.engine.StepRunner.Sampled;
import io.ringserve.worker.engine.StepRunner.Sampling;
import io.ringserve.worker.engine.StepRunner.StepEntry;
import io.ringserve.worker.reference.Golden;
import io.ringserve.worker.weights.SafetensorsCheckpoint;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * {@link CudaRunner#profile}: a profiled decode step times every op of the forward pass (each with its expected
 * launches and a positive time) and samples exactly what the unprofiled eager step samples, on the tiny Ring
 * fixture; profiling keeps graphs off; the {@code logits} command is not profiled.
 */
class CudaKernelProfileTest extends GpuTestSupport {
    private static final String FIXTURE = "tiny-ring-a";
    private static final int BLOCK = 16;
    private static final int BLOCKS_PER_SEQ = 4;
    private static final int SEQS = 3;
    private static final int DECODE_STEPS = 4;

    /** Per step (the prefill first): the sampled ids, then the logits (N, V) of that step, as float bits. */
    private record Run(List<int[]> tokens, List<float[]> logits) {
    }

    /**
     * Prefills {@link #SEQS} sequences in one step, then runs {@link #DECODE_STEPS} decode steps of all of them
     * (greedy, and seeded random for the last sequence). With {@code profile}, the prefill is profiled too (then
     * forgotten: {@link KernelProfile#reset}), and the decode steps are left in it.
     */
    private static Run run(CudaRunner runner, KernelProfile profile) {
        runner.allocateKv(BLOCK, SEQS * BLOCKS_PER_SEQ);
        runner.profile(profile);
        int[][] history = new int[SEQS][];
        int[] length = new int[SEQS];
        int[][] tables = new int[SEQS][BLOCKS_PER_SEQ];
        Sampler[] samplers = new Sampler[SEQS];
        List<StepEntry> prefill = new ArrayList<>();
        for (int i = 0; i < SEQS; i++) {
            int[] prompt = Golden.randomPrompt(200 + i, 5 + 3 * i);
            history[i] = Arrays.copyOf(prompt, BLOCKS_PER_SEQ * BLOCK);
            length[i] = prompt.length;
            for (int b = 0; b < BLOCKS_PER_SEQ; b++) {
                tables[i][b] = (i + 1) * BLOCKS_PER_SEQ - 1 - b;
            }
            samplers[i] = Sampler.of(i == SEQS - 1 ? new SamplingParams(0.8, 20, 0.9, 0.02, 1, 0, 0, 77) : SamplingParams.greedy());
            prefill.add(new StepEntry(i, prompt, 0, tables[i], new Sampling(samplers[i], history[i], length[i], prompt.length, 0)));
        }
        List<int[]> tokens = new ArrayList<>();
        List<float[]> logits = new ArrayList<>();
        step(runner, prefill, history, length, tokens, logits);
        if (profile != null) {
            assertEquals(1, profile.steps(), "the prefill was profiled");
            profile.reset();
        }
        for (int s = 0; s < DECODE_STEPS; s++) {
            List<StepEntry> batch = new ArrayList<>();
            for (int i = 0; i < SEQS; i++) {
                int position = length[i] - 1;
                batch.add(new StepEntry(i, new int[] {history[i][position]}, position, tables[i],
                        new Sampling(samplers[i], history[i], length[i], 5 + 3 * i, 0)));
            }
            step(runner, batch, history, length, tokens, logits);
            assertEquals(0, runner.lastBucket(), "a profiled step runs eagerly");
        }
        return new Run(tokens, logits);
    }

    private static void step(CudaRunner runner, List<StepEntry> batch, int[][] history, int[] length, List<int[]> tokens, List<float[]> logits) {
        Sampled[] out = runner.step(batch);
        int[] ids = new int[out.length];
        for (int i = 0; i < out.length; i++) {
            ids[i] = out[i].token();
            history[i][length[i]++] = ids[i];
        }
        tokens.add(ids);
        logits.add(runner.lastLogits());
    }

    @GpuTest
    void aProfiledDecodeStepTimesEveryOpAndSamplesAsAnUnprofiledEagerStep() {
        ModelConfig config = ModelConfig.load(Golden.dir(FIXTURE));
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(Golden.dir(FIXTURE));
             CudaWeights weights = CudaWeights.load(device(), config, ckpt, null)) {
            Run plain;
            CudaRunner eager = new CudaRunner(device(), weights, false, true);
            try {
                plain = run(eager, null);
            } finally {
                eager.close();
            }
            try (KernelProfile profile = new KernelProfile()) {
                CudaRunner runner = new CudaRunner(device(), weights, true, true); // graphs and dual streams on: profiling overrides both
                Run profiled;
                try {
                    profiled = run(runner, profile);
                    assertEquals(0, runner.graphCount(), "nothing captured while profiling");
                    runner.logits(new int[] {1, 2, 3}, new int[] {0}, null);
                    assertEquals(DECODE_STEPS, profile.steps(), "logits() is not profiled");
                } finally {
                    runner.profile(null);
                    runner.close();
                }
                for (int s = 0; s < plain.tokens().size(); s++) {
                    assertArrayEquals(plain.tokens().get(s), profiled.tokens().get(s), "step " + s + ": sampled ids");
                    assertBitExact("step " + s + ": logits", plain.logits().get(s), profiled.logits().get(s));
                }

                KernelProfile.Table table = profile.table(config, 1e12, Double.NaN);
                assertEquals(SEQS, table.batch());
                assertEquals(DECODE_STEPS, table.steps());
                for (Op op : Op.values()) {
                    int launches = KernelProfile.launches(config, op, SEQS);
                    KernelProfile.Row row = table.row(op);
                    if (launches == 0) {
                        assertNull(row, op.label() + " does not run in a decode step");
                    } else {
                        assertNotNull(row, op.label() + " was not timed");
                        assertEquals(launches, row.launches(), op.label() + ": launches per step");
                        assertTrue(row.micros() > 0, op.label() + ": " + row.micros() + " us");
                    }
                }
                assertTrue(table.stepMicros() > 0 && table.stepBytes() > 0);
                System.out.print(table.format());
            }
        }
    }
}
