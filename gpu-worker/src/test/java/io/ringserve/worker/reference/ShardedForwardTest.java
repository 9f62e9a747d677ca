package io.ringserve.worker.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.ringserve.model.config.ModelConfig;
import io.ringserve.worker.reference.ReferenceForward.Chunk;
import io.ringserve.worker.reference.ReferenceForward.Span;
import io.ringserve.worker.weights.SafetensorsCheckpoint;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.api.Test;

/**
 * A model cut into layer shards (pipeline stages) computes bit for bit what the whole model computes: the
 * pieces {@code embed → layers → logits} on shards holding consecutive ranges, with float32 hidden states handed
 * from one to the next, give the same logits as the whole-model forward, over a batch of several sequences
 * (prefill chunks, then decode steps) against paged KV caches that hold only each shard's layers.
 */
class ShardedForwardTest {

    /** A fixture and where it is cut: shard i holds layers [cuts[i], cuts[i+1]). */
    record Split(String fixture, int[] cuts) {
        @Override
        public String toString() {
            StringBuilder sb = new StringBuilder(fixture);
            for (int i = 0; i + 1 < cuts.length; i++) {
                sb.append(i == 0 ? " " : ",").append(cuts[i]).append('-').append(cuts[i + 1]);
            }
            return sb.toString();
        }
    }

    static Stream<Split> splits() {
        return Stream.of(
                new Split("tiny-ring-a", new int[] {0, 1, 3}),
                new Split("tiny-ring-a", new int[] {0, 2, 3}),
                new Split("tiny-ring-a", new int[] {0, 1, 2, 3}),
                new Split("tiny-ring-lite-a", new int[] {0, 1, 2}));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("splits")
    void shardsComputeExactlyTheWholeModelsLogits(Split split) {
        ModelConfig config = ModelConfig.load(Golden.dir(split.fixture()));
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(Golden.dir(split.fixture()))) {
            int total = config.numHiddenLayers();
            ReferenceForward whole = new ReferenceForward(ModelWeights.load(config, ckpt));
            List<ReferenceForward> shards = new ArrayList<>();
            List<PagedKvCache> shardKv = new ArrayList<>();
            for (int i = 0; i + 1 < split.cuts().length; i++) {
                LayerRange range = new LayerRange(split.cuts()[i], split.cuts()[i + 1], total);
                shards.add(new ReferenceForward(ModelWeights.load(config, ckpt, range)));
                shardKv.add(new PagedKvCache(config, range, 4, 32));
            }
            PagedKvCache wholeKv = new PagedKvCache(config, 4, 32);
            // three sequences, block tables interleaved so the paging is exercised: blocks 0..29
            int[][] tables = new int[3][10];
            for (int s = 0; s < 3; s++) {
                for (int b = 0; b < 10; b++) {
                    tables[s][b] = b * 3 + (2 - s);
                }
            }
            int[][] prompts = {Golden.randomPrompt(1, 9), Golden.randomPrompt(2, 5), Golden.randomPrompt(3, 13)};
            int[] lengths = new int[3];
            int[] next = new int[3];
            for (int step = 0; step < 6; step++) {
                List<int[]> tokens = new ArrayList<>();
                for (int s = 0; s < 3; s++) {
                    // step 0: the prompts; later: one token each, the argmax of the last logits
                    tokens.add(step == 0 ? prompts[s] : new int[] {next[s]});
                }
                List<Chunk> wholeBatch = new ArrayList<>();
                for (int s = 0; s < 3; s++) {
                    wholeBatch.add(new Chunk(tokens.get(s), lengths[s], wholeKv.view(tables[s]), step == 0));
                }
                float[][] expected = whole.forward(wholeBatch, null);

                float[] x = null;
                float[][] logits = null;
                for (int i = 0; i < shards.size(); i++) {
                    List<Chunk> batch = new ArrayList<>();
                    List<Span> spans = new ArrayList<>();
                    for (int s = 0; s < 3; s++) {
                        Chunk c = new Chunk(tokens.get(s), lengths[s], shardKv.get(i).view(tables[s]), step == 0);
                        batch.add(c);
                        spans.add(c.span());
                    }
                    if (i == 0) {
                        x = shards.get(i).embed(batch, null);
                    }
                    shards.get(i).layers(x, spans, null);
                    if (i == shards.size() - 1) {
                        logits = shards.get(i).logits(x, spans);
                    }
                }
                for (int s = 0; s < 3; s++) {
                    assertArrayEquals(expected[s], logits[s], split + " step " + step + " sequence " + s + ": bit for bit");
                    lengths[s] += tokens.get(s).length;
                    float[] last = java.util.Arrays.copyOfRange(expected[s], expected[s].length - config.vocabSize(), expected[s].length);
                    next[s] = io.ringserve.worker.engine.Sampler.argmax(last);
                }
            }
        }
    }

    @Test
    void aShardMapsOnlyItsTensorsAndRefusesTheOthersWork() {
        ModelConfig config = ModelConfig.load(Golden.dir("tiny-ring-a"));
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(Golden.dir("tiny-ring-a"))) {
            ModelWeights first = ModelWeights.load(config, ckpt, new LayerRange(0, 1, 3));
            ModelWeights middle = ModelWeights.load(config, ckpt, new LayerRange(1, 2, 3));
            ModelWeights last = ModelWeights.load(config, ckpt, new LayerRange(2, 3, 3));
            assertNotNull(first.wordEmbeddings());
            assertNull(first.lmHead());
            assertNull(middle.wordEmbeddings());
            assertNull(middle.norm());
            assertNotNull(last.lmHead());
            assertNotNull(last.norm());
            assertEquals(1, middle.layers().size());
            assertThrows(IllegalArgumentException.class, () -> middle.layer(0));

            LayerRange all = LayerRange.all(3);
            long sum = ModelWeights.heldBytes(config, ckpt, first.range()) + ModelWeights.heldBytes(config, ckpt, middle.range())
                    + ModelWeights.heldBytes(config, ckpt, last.range());
            assertEquals(ModelWeights.heldBytes(config, ckpt, all), sum, "the shards together hold each tensor once");
            assertEquals(ckpt.totalBytes(), ModelWeights.heldBytes(config, ckpt, all), "the whole model holds every tensor");

            ReferenceForward mid = new ReferenceForward(middle);
            IllegalStateException noEmbed = assertThrows(IllegalStateException.class,
                    () -> mid.embed(List.of(new Chunk(new int[] {1}, 0, mid.newCache(), false)), null));
            assertTrue(noEmbed.getMessage().contains("1-2 of 3"), noEmbed.getMessage());
            assertThrows(IllegalStateException.class, () -> mid.logits(new float[config.hiddenSize()], List.of(new Span(1, 0, mid.newCache(), false))));
            assertEquals(2L * 1 * config.kvDim() * Float.BYTES * 16, PagedKvCache.bytesPerBlock(config, middle.range(), 16),
                    "a shard's KV block counts only its layers");
        }
    }

    @Test
    void layerRangesParseAndExplainMistakes() {
        assertEquals(new LayerRange(0, 10, 20), LayerRange.parse("0-10", 20));
        assertEquals(new LayerRange(10, 20, 20), LayerRange.parse(" 10 - 20 ", 20));
        assertTrue(LayerRange.parse("0-20", 20).isAll());
        for (String bad : List.of("", "10", "-5", "a-b", "5-", "3-3", "4-2", "0-21")) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LayerRange.parse(bad, 20), bad);
            assertTrue(e.getMessage().contains("layer range") || e.getMessage().contains("not a layer range"), e.getMessage());
        }
    }

    /**
     * With the hidden states rounded to bf16 between shards (stage-dtype bfloat16), the logits of every golden prompt
     * stay within the model's tolerance (MODEL.md §11): their relative L2 error against the float64 reference is at
     * most 1.5 times Hugging Face's own bf16 run's, for every cut of both fixtures.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("splits")
    void bf16HiddenStatesBetweenShardsStayWithinTheModelsTolerance(Split split) {
        ModelConfig config = ModelConfig.load(Golden.dir(split.fixture()));
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(Golden.dir(split.fixture()))) {
            int total = config.numHiddenLayers();
            List<ReferenceForward> shards = new ArrayList<>();
            for (int i = 0; i + 1 < split.cuts().length; i++) {
                shards.add(new ReferenceForward(ModelWeights.load(config, ckpt, new LayerRange(split.cuts()[i], split.cuts()[i + 1], total))));
            }
            for (Golden.Prompt p : Golden.prompts(split.fixture())) {
                int t = p.inputIds().length;
                float[] x = null; // (T, D)
                float[][] logits = null;
                for (ReferenceForward shard : shards) {
                    int blocks = (t + 15) / 16;
                    int[] table = new int[blocks];
                    for (int b = 0; b < blocks; b++) {
                        table[b] = b;
                    }
                    Chunk chunk = new Chunk(p.inputIds(), 0, new PagedKvCache(config, shard.layerRange(), 16, blocks).view(table), true);
                    if (x == null) {
                        x = shard.embed(List.of(chunk), null);
                    } else {
                        x = io.ringserve.worker.weights.Bf16.toFloat(io.ringserve.worker.weights.Bf16.fromFloat(x)); // the wire
                    }
                    shard.layers(x, List.of(chunk.span()), null);
                    if (shard.layerRange().isLast()) {
                        logits = shard.logits(x, List.of(chunk.span()));
                    }
                }
                assertNotNull(logits);
                double ours = Golden.relL2(logits[0], p.logits());
                double hf = Golden.relL2(p.hfBf16Logits(), p.logits());
                assertTrue(ours <= 1.5 * hf, split + "/" + p.name() + ": relative L2 " + ours + " > 1.5 x HF bf16's " + hf);
            }
        }
    }
}
