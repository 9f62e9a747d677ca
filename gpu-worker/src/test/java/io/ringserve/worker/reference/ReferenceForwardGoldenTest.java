package io.ringserve.worker.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.ringserve.model.config.BailingMoeConfig;
import io.ringserve.model.config.ModelConfig;
import io.ringserve.worker.engine.Sampler;
import io.ringserve.worker.weights.SafetensorsCheckpoint;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The CPU reference against the float64 golden data of each fixture (docs/MODEL.md §11 tolerances):
 * tiny-ring-a (BailingMoeV2) and tiny-ring-lite-a (BailingMoe v1: softmax router, full RoPE, no QK-norm,
 * fused shared experts, norm_head). The same forward pass serves both.
 */
class ReferenceForwardGoldenTest {
    static final List<String> FIXTURES = List.of("tiny-ring-a", "tiny-ring-lite-a");
    static final Map<String, SafetensorsCheckpoint> checkpoints = new LinkedHashMap<>();
    static final Map<String, ReferenceForward> models = new LinkedHashMap<>();

    /** One prompt of one fixture. */
    record Case(String fixture, Golden.Prompt p) {
        ReferenceForward model() {
            return models.get(fixture);
        }

        ModelConfig config() {
            return model().config();
        }

        @Override
        public String toString() {
            return fixture + "/" + p.name();
        }
    }

    @BeforeAll
    static void load() {
        for (String fixture : FIXTURES) {
            ModelConfig config = ModelConfig.load(Golden.dir(fixture));
            SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.open(Golden.dir(fixture));
            checkpoints.put(fixture, checkpoint);
            models.put(fixture, new ReferenceForward(ModelWeights.load(config, checkpoint)));
        }
    }

    @AfterAll
    static void close() {
        checkpoints.values().forEach(SafetensorsCheckpoint::close);
    }

    static Stream<Case> prompts() {
        return FIXTURES.stream().flatMap(f -> Golden.prompts(f).stream().map(p -> new Case(f, p)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("prompts")
    void logitsMatchTheReferenceWithinRelativeL2Of1e4(Case c) {
        Golden.Prompt p = c.p();
        ReferenceForward model = c.model();
        float[] logits = model.forward(model.newCache(), p.inputIds(), true, null);
        int vocab = c.config().vocabSize();
        assertEquals(p.logitsShape()[0] * p.logitsShape()[1], logits.length);
        double whole = Golden.relL2(logits, p.logits());
        assertTrue(whole <= 1e-4, "relative L2 error " + whole);
        for (int t = 0; t < p.inputIds().length; t++) {
            double row = Golden.relL2(logits, t * vocab, p.logits(), t * vocab, vocab);
            assertTrue(row <= 1e-4, "token " + t + ": relative L2 error " + row);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("prompts")
    void residualStreamAfterEveryLayerMatches(Case c) {
        Golden.Prompt p = c.p();
        ReferenceForward model = c.model();
        ModelConfig config = c.config();
        int tokens = p.inputIds().length;
        int hidden = config.hiddenSize();
        float[][] seen = new float[config.numHiddenLayers() + 1][];
        model.forward(model.newCache(), p.inputIds(), false, new ForwardTrace() {
            @Override
            public void hidden(int index, float[] x, int t) {
                seen[index] = x;
            }
        });
        assertEquals(config.numHiddenLayers() + 1, p.hiddenShape()[0]);
        for (int i = 0; i < seen.length; i++) {
            double err = Golden.relL2(seen[i], 0, p.hidden(), i * tokens * hidden, tokens * hidden);
            assertTrue(err <= 1e-5, "hidden state " + i + " (0 = embedding): relative L2 error " + err);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("prompts")
    void everyRoutingDecisionMatches(Case c) {
        Golden.Prompt p = c.p();
        ReferenceForward model = c.model();
        ModelConfig config = c.config();
        int[][][] seen = new int[config.numHiddenLayers()][][];
        model.forward(model.newCache(), p.inputIds(), false, new ForwardTrace() {
            @Override
            public void routes(int layer, int[][] ids) {
                seen[layer] = ids;
            }
        });
        int moeLayers = config.numHiddenLayers() - config.firstKDenseReplace();
        assertEquals(moeLayers, p.routes().length);
        for (int m = 0; m < moeLayers; m++) {
            int layer = config.firstKDenseReplace() + m;
            for (int t = 0; t < p.inputIds().length; t++) {
                assertArrayEquals(p.routes()[m][t], seen[layer][t], "layer " + layer + " token " + t);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("prompts")
    void greedyDecodingWithTheKvCacheReproduces24Tokens(Case c) {
        Golden.Prompt p = c.p();
        ReferenceForward model = c.model();
        KvCache cache = model.newCache();
        float[] logits = model.forward(cache, p.inputIds(), false, null);
        int[] generated = new int[24];
        for (int i = 0; i < generated.length; i++) {
            generated[i] = Sampler.argmax(logits);
            logits = model.forward(cache, new int[] {generated[i]}, false, null);
        }
        assertArrayEquals(p.greedy24(), generated);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("prompts")
    void chunkedAndIncrementalPrefillEqualOneFullPrefill(Case c) {
        int[] ids = c.p().inputIds();
        ReferenceForward model = c.model();
        float[] full = model.forward(model.newCache(), ids, true, null);
        int vocab = c.config().vocabSize();
        for (int chunk : List.of(1, 5, 16, ids.length - 1)) {
            KvCache cache = model.newCache();
            float[] pieced = new float[full.length];
            for (int from = 0; from < ids.length; from += chunk) {
                int[] part = Arrays.copyOfRange(ids, from, Math.min(ids.length, from + chunk));
                float[] logits = model.forward(cache, part, true, null);
                System.arraycopy(logits, 0, pieced, from * vocab, logits.length);
            }
            assertEquals(ids.length, cache.length());
            float maxDiff = 0;
            for (int i = 0; i < full.length; i++) {
                maxDiff = Math.max(maxDiff, Math.abs(full[i] - pieced[i]));
            }
            assertTrue(maxDiff <= 1e-5f, "chunk " + chunk + ": max |diff| " + maxDiff);
        }
    }

    /** v1's norm_head changes the logits (the fixture's lm_head columns are not unit norm), so the check above covers it. */
    @Test
    void v1NormHeadIsApplied() throws Exception {
        String json = Files.readString(Golden.dir("tiny-ring-lite-a").resolve("config.json"));
        assertTrue(json.contains("\"norm_head\": true"));
        BailingMoeConfig raw = BailingMoeConfig.parse("config.json", json.replace("\"norm_head\": true", "\"norm_head\": false"));
        ReferenceForward unnormalised = new ReferenceForward(ModelWeights.load(raw, checkpoints.get("tiny-ring-lite-a")));
        Golden.Prompt p = Golden.prompts("tiny-ring-lite-a").getFirst();
        double err = Golden.relL2(unnormalised.forward(unnormalised.newCache(), p.inputIds(), true, null), p.logits());
        assertTrue(err > 1e-2, "without norm_head the logits are far off: " + err);
        assertTrue(models.get("tiny-ring-lite-a").config() instanceof BailingMoeConfig v1 && v1.normHead());
    }
}
