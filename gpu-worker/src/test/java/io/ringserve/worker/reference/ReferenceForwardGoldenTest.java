package io.ringserve.worker.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.ringserve.model.config.BailingMoeV2Config;
import io.ringserve.worker.engine.Sampler;
import io.ringserve.worker.weights.SafetensorsCheckpoint;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** The CPU reference against the float64 golden data of tiny-ring-a (docs/MODEL.md §11 tolerances). */
class ReferenceForwardGoldenTest {
    static SafetensorsCheckpoint checkpoint;
    static ReferenceForward model;
    static BailingMoeV2Config config;

    @BeforeAll
    static void load() {
        config = BailingMoeV2Config.load(Golden.dir("tiny-ring-a").resolve("config.json"));
        checkpoint = SafetensorsCheckpoint.open(Golden.dir("tiny-ring-a"));
        model = new ReferenceForward(ModelWeights.load(config, checkpoint));
    }

    @AfterAll
    static void close() {
        checkpoint.close();
    }

    static Stream<Golden.Prompt> prompts() {
        return Golden.prompts("tiny-ring-a").stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("prompts")
    void logitsMatchTheReferenceWithinRelativeL2Of1e4(Golden.Prompt p) {
        float[] logits = model.forward(model.newCache(), p.inputIds(), true, null);
        int vocab = config.vocabSize();
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
    void residualStreamAfterEveryLayerMatches(Golden.Prompt p) {
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
    void everyRoutingDecisionMatches(Golden.Prompt p) {
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
    void greedyDecodingWithTheKvCacheReproduces24Tokens(Golden.Prompt p) {
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
    void chunkedAndIncrementalPrefillEqualOneFullPrefill(Golden.Prompt p) {
        int[] ids = p.inputIds();
        float[] full = model.forward(model.newCache(), ids, true, null);
        int vocab = config.vocabSize();
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
}
