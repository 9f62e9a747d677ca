package io.ringserve.worker.cuda.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.ringserve.model.config.BailingMoeConfig;
import io.ringserve.model.config.BailingMoeV2Config;
import io.ringserve.model.config.ModelConfig;
import io.ringserve.model.sampling.SamplingParams;
import io.ringserve.worker.cuda.CudaRunner;
import io.ringserve.worker.cuda.CudaWeights;
import io.ringserve.worker.cuda.RecordingDevice;
import io.ringserve.worker.cuda.RecordingDevice.Launch;
import io.ringserve.worker.engine.Sampler;
import io.ringserve.worker.engine.StepRunner.Sampled;
import io.ringserve.worker.engine.StepRunner.Sampling;
import io.ringserve.worker.engine.StepRunner.StepEntry;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Whole {@link CudaRunner} steps at the real model shapes without a GPU: dummy weights and the runner on a driverless
 * device ({@link RecordingDevice}; eager, one stream — graphs and dual streams need the driver), so every buffer the
 * runner sizes meets every wrapper's size checks, and every launch of the step is checked against the kernel's PTX
 * signature as in {@link KernelSignatureTest}. The steps cover each path a shape selects: prefill chunks of 1 001
 * tokens (tensor-core experts, matmul, prefill attention), 100 and 8 tokens (CUDA-core grouped experts; gemv with
 * SiLU·mul fused), decode at 1, 7 (gemv), 33 (one-pass attention, matmul) and 64 sequences, a row sampled on the host
 * (penalties), and the CLI's {@code logits} (all rows, routes copied back). What it cannot see: any value (the buffers hold no memory) and the graph and dual-stream paths.
 */
class CudaRunnerLaunchTest {
    private static final int BLOCK = 16;
    private static final int BLOCKS_PER_SEQ = 80; // 1 280 positions per sequence

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"ring-mini-2.0", "ring-lite"})
    void everyStepOfTheRealShapesLaunchesWhatTheKernelsTake(String preset) throws IOException {
        Map<String, PtxKernels> ptx = KernelSignatureTest.ptx(); // skips without PTX
        ModelConfig config = preset.equals("ring-lite") ? BailingMoeConfig.ringLite() : BailingMoeV2Config.ringMini20();
        try (RecordingDevice r = new RecordingDevice(); CudaWeights weights = CudaWeights.dummy(r.device(), config, 7)) {
            r.take(); // the weight fill kernels: checked by KernelSignatureTest
            CudaRunner runner = new CudaRunner(r.device(), weights, false, false);
            runner.allocateKv(BLOCK, 64 * BLOCKS_PER_SEQ);
            List<String> problems = new ArrayList<>();
            Set<String> kernels = new TreeSet<>();
            int steps = 0;
            for (List<StepEntry> step : steps(config)) {
                Sampled[] out = runner.step(step);
                assertEquals(step.size(), out.length);
                for (Launch l : r.take()) {
                    kernels.add(l.name());
                    problems.addAll(KernelSignatureTest.problems(ptx, l));
                }
                steps++;
            }
            // the CLI's logits command: one whole-prompt prefill, the routes copied back per layer
            int[][][] routes = new int[config.numHiddenLayers()][][];
            float[] logits = runner.logits(new int[] {1, 2, 3, 4, 5}, table(6), routes);
            assertEquals(5L * config.vocabSize(), logits.length);
            for (Launch l : r.take()) {
                kernels.add(l.name());
                problems.addAll(KernelSignatureTest.problems(ptx, l));
            }
            if (!problems.isEmpty()) {
                fail(problems.size() + " problems in " + steps + " steps of " + preset + ":\n" + String.join("\n", problems.subList(0, Math.min(40, problems.size()))));
            }
            for (String expected : List.of("moe_experts.moe_gate_up_silu_mma", "moe_experts.moe_gate_up_silu", "gemv.gemv_swiglu_bf16_8",
                    "attention_decode.attention_decode_split", "attention_decode.attention_decode", "attention_prefill.attention_prefill",
                    "matmul.matmul_bf16", "sample.sample_partials", "router_top_k.router_top_k")) {
                assertTrue(kernels.contains(expected), expected + " never ran in these steps: " + kernels);
            }
            assertFalse(kernels.contains("moe_experts.moe_group"), "the router's last block builds the group plan: " + kernels);
            runner.close();
        }
    }

    /**
     * The KV budget check counts the step buffers the engine announces (driverless device: 80 GiB, all free; the
     * Ring-mini-2.0 weights take 30 GiB of it): a budget that fits beside the defaults' buffers is taken, the same
     * budget beside the buffers of a huge max-batch-tokens is refused, naming it.
     */
    @org.junit.jupiter.api.Test
    void theKvBudgetLeavesRoomForTheAnnouncedStepBuffers() {
        ModelConfig config = BailingMoeV2Config.ringMini20();
        try (RecordingDevice r = new RecordingDevice(); CudaWeights weights = CudaWeights.dummy(r.device(), config, 7)) {
            int blocks = (int) ((40L << 30) / (2L * config.numHiddenLayers() * BLOCK * config.kvDim() * 2)); // 40 GiB of KV
            CudaRunner fits = new CudaRunner(r.device(), weights, true, false);
            fits.reserveSteps(512, 64); // the worker's defaults
            fits.allocateKv(BLOCK, blocks);
            fits.close();

            CudaRunner huge = new CudaRunner(r.device(), weights, true, false);
            huge.reserveSteps(200_000, 64);
            IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> huge.allocateKv(BLOCK, blocks));
            assertTrue(e.getMessage().contains("max-batch-tokens 200000") && e.getMessage().contains("lower kv-cache-bytes or max-batch-tokens"),
                    e.getMessage());
            huge.close();
        }
    }

    /** Prefill and decode steps of the sizes that select each kernel path. */
    private static List<List<StepEntry>> steps(ModelConfig c) {
        List<List<StepEntry>> steps = new ArrayList<>();
        steps.add(List.of(entry(0, 700, 0, true), entry(1, 1, 0, true), entry(2, 300, 0, false))); // 1 001 tokens
        steps.add(List.of(entry(3, 100, 0, true)));
        steps.add(List.of(entry(4, 8, 0, true)));
        for (int batch : new int[] {1, 7, 33, 64}) {
            List<StepEntry> decode = new ArrayList<>();
            for (int s = 0; s < batch; s++) {
                decode.add(entry(s, 1, 500 + s, true));
            }
            steps.add(decode);
        }
        // a row with a repetition penalty is sampled on the host from its logits row
        SamplingParams penalised = new SamplingParams(0.7, 0, 1.0, 0.0, 1.2, 0, 0, 42);
        steps.add(List.of(new StepEntry(5, new int[] {3}, 900, table(5), new Sampling(Sampler.of(penalised), new int[] {1, 2, 3}, 3, 2, 0))));
        return steps;
    }

    private static StepEntry entry(int seq, int tokens, int start, boolean sample) {
        int[] ids = new int[tokens];
        for (int i = 0; i < tokens; i++) {
            ids[i] = (seq * 31 + i) % 1000;
        }
        Sampling sampling = sample ? new Sampling(Sampler.of(SamplingParams.greedy()), ids, tokens, tokens, 0) : null;
        return new StepEntry(seq, ids, start, table(seq), sampling);
    }

    /** Sequence {@code seq}'s block ids: its own 80 blocks. */
    private static int[] table(int seq) {
        int[] t = new int[BLOCKS_PER_SEQ];
        for (int i = 0; i < t.length; i++) {
            t[i] = seq * BLOCKS_PER_SEQ + i;
        }
        return t;
    }
}
