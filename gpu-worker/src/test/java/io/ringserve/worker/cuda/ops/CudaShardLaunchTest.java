package io.ringserve.worker.cuda.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.ringserve.model.config.BailingMoeConfig;
import io.ringserve.model.config.BailingMoeV2Config;
import io.ringserve.model.config.ModelConfig;
import io.ringserve.model.sampling.SamplingParams;
import io.ringserve.worker.cuda.CudaRunner;
import io.ringserve.worker.cuda.CudaWeights;
import io.ringserve.worker.cuda.RecordingDevice;
import io.ringserve.worker.cuda.RecordingDevice.Launch;
import io.ringserve.worker.engine.Sampler;
import io.ringserve.worker.engine.ShardRunner;
import io.ringserve.worker.engine.StepRunner.Sampling;
import io.ringserve.worker.engine.StepRunner.StepEntry;
import io.ringserve.worker.reference.LayerRange;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The CUDA backend cut into pipeline shards, at the real model shapes, without a GPU (dummy weights on a driverless
 * device, {@link RecordingDevice}): a shard holds the bytes of its layers only (the embeddings on the first, the final
 * norm and lm_head on the last), its KV cache counts its layers only, and the launches of the shards of a step, one
 * after the other, are the whole model's launches but for the one place they must differ: the last MoE layer of a
 * shard cannot write the next layer's input norm (that layer's weights live on the next shard), so it combines
 * plainly and the next shard starts with that norm. Every launch is checked against the kernel's PTX signature.
 */
class CudaShardLaunchTest {
    private static final int BLOCK = 16;
    private static final int BLOCKS_PER_SEQ = 8;

    private static ModelConfig config(String preset) {
        return preset.equals("ring-lite") ? BailingMoeConfig.ringLite() : BailingMoeV2Config.ringMini20();
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"ring-mini-2.0", "ring-lite"})
    void shardsHoldTheirShareOfTheWeightsAndTheKvCache(String preset) {
        ModelConfig c = config(preset);
        int total = c.numHiddenLayers();
        List<LayerRange> shards = List.of(new LayerRange(0, 5, total), new LayerRange(5, 11, total), new LayerRange(11, total, total));
        long sum = 0;
        try (RecordingDevice r = new RecordingDevice()) {
            for (LayerRange range : shards) {
                try (CudaWeights w = CudaWeights.dummy(r.device(), c, range, 7)) {
                    assertEquals(CudaWeights.deviceBytes(c, range), w.bytes(), range.toString());
                    assertEquals(range.isFirst(), w.embedding() != null, range + ": embeddings");
                    assertEquals(range.isLast(), w.lmHead() != null && w.norm() != null, range + ": final norm and lm_head");
                    assertEquals(range.count(), w.layers().size());
                    sum += w.bytes();
                    CudaRunner runner = new CudaRunner(r.device(), w, false, false);
                    assertEquals(2L * range.count() * BLOCK * c.kvDim() * 2, runner.kvBytesPerBlock(BLOCK), range + ": K and V of its layers, bf16");
                    runner.close();
                }
            }
        }
        assertEquals(CudaWeights.deviceBytes(c), sum, "the shards together hold the model once (embeddings and lm_head are not tied)");
        assertEquals(CudaWeights.deviceBytes(c), CudaWeights.deviceBytes(c, LayerRange.all(total)));
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"ring-mini-2.0", "ring-lite"})
    void theShardsOfAStepLaunchWhatTheWholeModelLaunches(String preset) throws IOException {
        Map<String, PtxKernels> ptx = KernelSignatureTest.ptx(); // skips without PTX
        ModelConfig c = config(preset);
        int total = c.numHiddenLayers();
        int cut = total / 2;
        LayerRange head = new LayerRange(0, cut, total);
        LayerRange tail = new LayerRange(cut, total, total);
        for (List<StepEntry> step : List.of(decode(5), prefill(40))) {
            int t = ShardRunner.tokens(step);
            List<Launch> whole;
            try (RecordingDevice r = new RecordingDevice(); CudaWeights w = CudaWeights.dummy(r.device(), c, 7)) {
                CudaRunner runner = new CudaRunner(r.device(), w, false, false);
                runner.allocateKv(BLOCK, 8 * BLOCKS_PER_SEQ);
                r.take();
                runner.step(step);
                whole = r.take();
                runner.close();
            }
            List<Launch> shards = new ArrayList<>();
            try (RecordingDevice r = new RecordingDevice();
                 CudaWeights hw = CudaWeights.dummy(r.device(), c, head, 7);
                 CudaWeights tw = CudaWeights.dummy(r.device(), c, tail, 7)) {
                CudaRunner first = new CudaRunner(r.device(), hw, false, false);
                CudaRunner last = new CudaRunner(r.device(), tw, false, false);
                first.allocateKv(BLOCK, 8 * BLOCKS_PER_SEQ);
                last.allocateKv(BLOCK, 8 * BLOCKS_PER_SEQ);
                r.take();
                ShardRunner.Hidden h = assertInstanceOf(ShardRunner.Hidden.class, first.run(step, null));
                assertEquals((long) t * c.hiddenSize(), h.x().length, "the head hands on (T, D)");
                shards.addAll(r.take());
                ShardRunner.Samples s = assertInstanceOf(ShardRunner.Samples.class, last.run(step, h.x()));
                for (int i = 0; i < step.size(); i++) {
                    assertEquals(step.get(i).sampling() != null, s.sampled()[i] != null, "entry " + i + " sampled as asked");
                }
                shards.addAll(r.take());
                first.close();
                last.close();
            }
            List<String> problems = new ArrayList<>();
            for (Launch l : shards) {
                problems.addAll(KernelSignatureTest.problems(ptx, l));
            }
            assertTrue(problems.isEmpty(), String.join("\n", problems));
            assertEquals(describe(expectedShards(whole, cut, c)), describe(shards), preset + ", " + t + " tokens");
        }
    }

    /**
     * The whole model's launches as two shards cut before layer {@code cut} launch them: the combine of the last MoE
     * layer before the cut is a plain moe_combine, and the next layer's input rmsnorm follows it.
     */
    private static List<String> expectedShards(List<Launch> whole, int cut, ModelConfig c) {
        List<String> out = new ArrayList<>();
        int combines = 0;
        int moeBefore = 0;
        for (int l = 0; l < cut; l++) {
            moeBefore += c.isMoeLayer(l) ? 1 : 0;
        }
        for (Launch l : whole) {
            String name = l.name();
            boolean combine = name.startsWith("moe_experts.moe_combine");
            if (combine) {
                combines++;
            }
            if (combine && combines == moeBefore && c.isMoeLayer(cut - 1)) {
                out.add("moe_experts.moe_combine");
                out.add("rmsnorm.rmsnorm");
            } else {
                out.add(name);
            }
        }
        return out;
    }

    private static List<String> describe(List<?> launches) {
        List<String> names = new ArrayList<>();
        for (Object o : launches) {
            names.add(o instanceof Launch l ? l.name() : o.toString());
        }
        return names;
    }

    @Test
    void aShardRefusesInputsThatAreNotItsOwn() {
        ModelConfig c = BailingMoeV2Config.ringMini20();
        int total = c.numHiddenLayers();
        try (RecordingDevice r = new RecordingDevice();
             CudaWeights hw = CudaWeights.dummy(r.device(), c, new LayerRange(0, 4, total), 7);
             CudaWeights tw = CudaWeights.dummy(r.device(), c, new LayerRange(4, total, total), 7)) {
            CudaRunner first = new CudaRunner(r.device(), hw, false, false);
            CudaRunner last = new CudaRunner(r.device(), tw, false, false);
            first.allocateKv(BLOCK, 8 * BLOCKS_PER_SEQ);
            last.allocateKv(BLOCK, 8 * BLOCKS_PER_SEQ);
            List<StepEntry> step = decode(2);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> first.run(step, new float[2 * c.hiddenSize()]));
            assertTrue(e.getMessage().contains("embeds token ids"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> last.run(step, null));
            assertTrue(e.getMessage().contains("need the hidden states"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> last.run(step, new float[c.hiddenSize()]));
            assertTrue(e.getMessage().contains("(2, 2048)"), e.getMessage());
            IllegalStateException s = assertThrows(IllegalStateException.class, () -> first.step(step));
            assertTrue(s.getMessage().contains("pipeline shard"), s.getMessage());
            first.close();
            last.close();
        }
    }

    /** A new session of the same shape keeps the KV cache; another shape replaces it. */
    @Test
    void aNewSessionKeepsOrReplacesTheKvCache() {
        ModelConfig c = BailingMoeV2Config.ringMini20();
        int total = c.numHiddenLayers();
        try (RecordingDevice r = new RecordingDevice(); CudaWeights tw = CudaWeights.dummy(r.device(), c, new LayerRange(10, total, total), 7)) {
            CudaRunner last = new CudaRunner(r.device(), tw, false, false);
            last.allocateKv(BLOCK, 64);
            long kv = last.kvBytes();
            last.allocateKv(BLOCK, 64);
            assertEquals(kv, last.kvBytes());
            last.allocateKv(BLOCK, 128);
            assertEquals(2 * kv, last.kvBytes());
            List<StepEntry> step = decode(3);
            assertNotNull(last.run(step, new float[3 * c.hiddenSize()]));
            last.close();
        }
    }

    private static List<StepEntry> decode(int batch) {
        List<StepEntry> step = new ArrayList<>();
        for (int s = 0; s < batch; s++) {
            step.add(entry(s, 1, 40 + s, true));
        }
        return step;
    }

    private static List<StepEntry> prefill(int tokens) {
        return List.of(entry(0, tokens, 0, true), entry(1, 3, 9, false));
    }

    private static StepEntry entry(int seq, int tokens, int start, boolean sample) {
        int[] ids = new int[tokens];
        for (int i = 0; i < tokens; i++) {
            ids[i] = (seq * 31 + i) % 1000;
        }
        Sampling sampling = sample ? new Sampling(Sampler.of(SamplingParams.greedy()), ids, tokens, tokens, 0) : null;
        int[] table = new int[BLOCKS_PER_SEQ];
        for (int i = 0; i < table.length; i++) {
            table[i] = seq * BLOCKS_PER_SEQ + i;
        }
        return new StepEntry(seq, ids, start, table, sampling);
    }

    @Test
    void dummyShardsDrawTheWholeModelsValues() {
        // a shard's tensor is seeded by its name alone: the same fill launch (elements, seed) as in the whole model
        ModelConfig c = BailingMoeV2Config.ringMini20();
        int total = c.numHiddenLayers();
        List<Object> wholeSeeds;
        List<Object> shardSeeds;
        try (RecordingDevice r = new RecordingDevice()) {
            try (CudaWeights w = CudaWeights.dummy(r.device(), c, 7)) {
                wholeSeeds = seeds(r.take());
            }
            try (CudaWeights w = CudaWeights.dummy(r.device(), c, new LayerRange(3, 9, total), 7)) {
                shardSeeds = seeds(r.take());
            }
        }
        assertEquals(6 * 7, shardSeeds.size(), "6 MoE layers of 7 random tensors: qkv, dense, router gate, the experts' gate_up and down,"
                + " the shared expert's gate_up and down");
        assertTrue(wholeSeeds.containsAll(shardSeeds), "every fill of the shard is one of the whole model's: " + shardSeeds);
    }

    /** Each fill launch as {@code elements:seed}. */
    private static List<Object> seeds(List<Launch> fills) {
        List<Object> seeds = new ArrayList<>();
        for (Launch l : fills) {
            seeds.add(l.args().get(1) + ":" + l.args().get(2));
        }
        return seeds;
    }
}
