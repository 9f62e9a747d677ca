package io.ringserve.worker.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.ringserve.model.config.ModelConfig;
import io.ringserve.model.sampling.SamplingParams;
import io.ringserve.worker.engine.Sampler;
import io.ringserve.worker.engine.ShardRunner;
import io.ringserve.worker.engine.StepRunner.Sampled;
import io.ringserve.worker.engine.StepRunner.Sampling;
import io.ringserve.worker.engine.StepRunner.StepEntry;
import io.ringserve.worker.reference.Golden;
import io.ringserve.worker.reference.LayerRange;
import io.ringserve.worker.weights.Bf16;
import io.ringserve.worker.weights.SafetensorsCheckpoint;
import java.util.ArrayList;
import java.util.List;

/**
 * The CUDA backend cut into pipeline shards on one GPU, against the whole model on the same GPU (tiny-ring-a, real
 * weights): with float32 hidden states between the shards, every step's sampled tokens and logits are bit for bit the
 * whole model's, through prefill and through decode steps replayed as CUDA graphs (a later shard's input copied into
 * the graph's residual stream), for cuts after the dense layer, inside the MoE layers and into three shards. With the
 * hidden states rounded to bf16 on the way (stage-dtype bfloat16) the logits stay within bf16 noise.
 */
class CudaShardTest extends GpuTestSupport {
    private static final String FIXTURE = "tiny-ring-a";
    private static final int BLOCK = 16;
    private static final int BLOCKS = 32;

    @GpuTest(emulated = true)
    void floatHiddenStatesGiveTheWholeModelsTokensAndLogitsBitForBit() {
        for (String layout : List.of("0-1,1-3", "0-2,2-3", "0-1,1-2,2-3")) {
            compare(layout, false);
        }
    }

    @GpuTest(emulated = true)
    void bf16HiddenStatesStayWithinBf16Noise() {
        compare("0-2,2-3", true);
    }

    /**
     * A prefill of three prompts, then seven decode steps of the three (tokens fed back from the whole model), each
     * step run by the whole model and by the shards in turn.
     */
    private void compare(String layoutText, boolean bf16) {
        ModelConfig config = ModelConfig.load(Golden.dir(FIXTURE));
        int total = config.numHiddenLayers();
        List<LayerRange> layout = new ArrayList<>();
        for (String part : layoutText.split(",")) {
            layout.add(LayerRange.parse(part, total));
        }
        List<CudaWeights> weights = new ArrayList<>();
        List<CudaRunner> shards = new ArrayList<>();
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(Golden.dir(FIXTURE));
             CudaWeights wholeWeights = CudaWeights.load(device(), config, ckpt, null)) {
            CudaRunner whole = new CudaRunner(device(), wholeWeights);
            whole.allocateKv(BLOCK, BLOCKS);
            for (LayerRange range : layout) {
                CudaWeights w = CudaWeights.load(device(), config, ckpt, range, null);
                weights.add(w);
                CudaRunner r = new CudaRunner(device(), w);
                r.allocateKv(BLOCK, BLOCKS);
                shards.add(r);
            }
            List<int[]> prompts = List.of(Golden.randomPrompt(11, 23), Golden.randomPrompt(12, 5), Golden.randomPrompt(13, 40));
            int[] next = null;
            int[] lengths = new int[prompts.size()];
            for (int step = 0; step < 8; step++) {
                List<StepEntry> batch = new ArrayList<>();
                for (int s = 0; s < prompts.size(); s++) {
                    int[] tokens = step == 0 ? prompts.get(s) : new int[] {next[s]};
                    int start = lengths[s];
                    lengths[s] += tokens.length;
                    batch.add(new StepEntry(s, tokens, start, table(s), new Sampling(Sampler.of(SamplingParams.greedy()), tokens, lengths[s],
                            lengths[s], 0)));
                }
                Sampled[] want = whole.step(batch);
                float[] wantLogits = whole.lastLogits();
                float[] hidden = null;
                Sampled[] got = null;
                for (CudaRunner shard : shards) {
                    switch (shard.run(batch, hidden)) {
                        case ShardRunner.Hidden h -> hidden = bf16 ? Bf16.toFloat(Bf16.fromFloat(h.x())) : h.x();
                        case ShardRunner.Samples s -> got = s.sampled();
                    }
                }
                float[] gotLogits = shards.getLast().lastLogits();
                String where = layoutText + ", step " + step + (step > 0 ? " (graph bucket " + shards.getLast().lastBucket() + ")" : "");
                if (bf16) {
                    double err = Golden.relL2(gotLogits, wantLogits);
                    assertTrue(err < 1e-2, where + ": relative L2 " + err + " of the logits after bf16 hidden states");
                } else {
                    assertArrayEquals(wantLogits, gotLogits, where + ": logits");
                    for (int s = 0; s < want.length; s++) {
                        assertEquals(want[s].token(), got[s].token(), where + ": sequence " + s);
                    }
                }
                next = new int[want.length];
                for (int s = 0; s < want.length; s++) {
                    next[s] = want[s].token();
                }
            }
            assertTrue(whole.lastBucket() > 0 && shards.getLast().lastBucket() > 0, "decode steps replayed graphs");
            whole.close();
        } finally {
            for (CudaRunner r : shards) {
                r.close();
            }
            for (CudaWeights w : weights) {
                w.close();
            }
        }
    }

    /** Sequence {@code s}'s blocks, out of order so the tables are really used. */
    private static int[] table(int s) {
        int[] t = new int[8];
        for (int i = 0; i < t.length; i++) {
            t[i] = (7 - i) * 4 + s;
        }
        return t;
    }
}
