package io.ringserve.worker.cli;

import io.ringserve.model.config.ModelConfig;
import io.ringserve.model.sampling.SamplingParams;
import io.ringserve.worker.cuda.CudaBackend;
import io.ringserve.worker.cuda.CudaRunner;
import io.ringserve.worker.cuda.KernelProfile;
import io.ringserve.worker.engine.Sampler;
import io.ringserve.worker.engine.StepRunner.Sampled;
import io.ringserve.worker.engine.StepRunner.Sampling;
import io.ringserve.worker.engine.StepRunner.StepEntry;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * {@code bench --profile}: the per-op GPU time of eager decode steps at one batch size, outside the engine. B
 * sequences with random prompts are prefilled one per step (so no prefill needs more than one prompt's buffers),
 * then {@link #WARM_UP} decode steps run profiled and are dropped, then {@link #STEPS} decode steps of all B
 * sequences are profiled into the {@link KernelProfile.Table}. The prompts are {@code promptLen + genLen / 2}
 * tokens long, so the profiled steps attend over about the mean context of the timed runs' decode steps.
 */
final class KernelProfileBench {
    static final int WARM_UP = 3;
    static final int STEPS = 20;
    private static final int BLOCK = 16;

    private KernelProfileBench() {
    }

    /**
     * @param bandwidth       the measured copy bandwidth (bytes/s, read + write)
     * @param graphStepMicros the step time of the timed runs at this batch size (B / decode tokens/s), NaN if unknown
     */
    static KernelProfile.Table run(CudaBackend cuda, ModelConfig config, int batch, int promptLen, int genLen, double bandwidth,
                                   double graphStepMicros) {
        CudaRunner runner = new CudaRunner(cuda.device(), cuda.weights(), false, true);
        try (KernelProfile profile = new KernelProfile()) {
            try {
                int decodeSteps = WARM_UP + STEPS;
                int prompt = Math.max(1, Math.min(promptLen + genLen / 2, runner.contextLength() - decodeSteps - 1));
                int positions = prompt + decodeSteps + 1;
                int blocksPerSeq = (positions + BLOCK - 1) / BLOCK;
                runner.allocateKv(BLOCK, batch * blocksPerSeq);
                int[][] history = new int[batch][positions];
                int[] length = new int[batch];
                int[][] tables = new int[batch][blocksPerSeq];
                SplittableRandom rng = new SplittableRandom(batch);
                for (int i = 0; i < batch; i++) {
                    for (int j = 0; j < prompt; j++) {
                        history[i][j] = rng.nextInt(Math.min(config.vocabSize(), 1536));
                    }
                    for (int b = 0; b < blocksPerSeq; b++) {
                        tables[i][b] = i * blocksPerSeq + b;
                    }
                    length[i] = prompt;
                    // prefill: the prompt, then the sampled token joins the history
                    step(runner, List.of(new StepEntry(i, Arrays.copyOf(history[i], prompt), 0, tables[i], sampling(history[i], prompt, prompt))),
                            new int[] {i}, history, length);
                }
                runner.profile(profile);
                for (int s = 0; s < decodeSteps; s++) {
                    if (s == WARM_UP) {
                        profile.reset();
                    }
                    List<StepEntry> entries = new ArrayList<>(batch);
                    int[] seqs = new int[batch];
                    for (int i = 0; i < batch; i++) {
                        int position = length[i] - 1; // the last sampled token goes in now
                        entries.add(new StepEntry(i, new int[] {history[i][position]}, position, tables[i], sampling(history[i], length[i], prompt)));
                        seqs[i] = i;
                    }
                    step(runner, entries, seqs, history, length);
                }
                return profile.table(config, bandwidth, graphStepMicros);
            } finally {
                runner.profile(null);
                runner.close();
            }
        }
    }

    private static Sampling sampling(int[] history, int length, int promptLength) {
        return new Sampling(Sampler.of(SamplingParams.greedy()), history, length, promptLength, -1);
    }

    /** Runs one step and appends each entry's sampled token to its sequence's history ({@code seqs[j]}: entry j's sequence). */
    private static void step(CudaRunner runner, List<StepEntry> entries, int[] seqs, int[][] history, int[] length) {
        Sampled[] out = runner.step(entries);
        for (int j = 0; j < out.length; j++) {
            int i = seqs[j];
            history[i][length[i]++] = out[j].token();
        }
    }
}
