package io.ringserve.worker.cli;

import io.ringserve.model.config.BailingMoeV2Config;
import io.ringserve.worker.engine.LocalModel;
import io.ringserve.worker.engine.Sampler;
import io.ringserve.worker.reference.KvCache;
import io.ringserve.worker.reference.ReferenceForward;
import java.io.PrintStream;
import java.util.Arrays;
import java.util.SplittableRandom;

/** CPU reference throughput: batch-1 prefill and decode tokens/s, median of several runs. */
final class Bench {
    private Bench() {
    }

    static void run(LocalModel model, int promptTokens, int decodeTokens, PrintStream out) {
        ReferenceForward f = model.forward();
        BailingMoeV2Config c = model.config();
        SplittableRandom rng = new SplittableRandom(1);
        int[] prompt = new int[promptTokens];
        for (int i = 0; i < prompt.length; i++) {
            prompt[i] = rng.nextInt(Math.min(c.vocabSize(), 1536));
        }
        int runs = 5;
        double[] prefill = new double[runs];
        double[] decode = new double[runs];
        for (int r = -1; r < runs; r++) { // r = -1 warms up the JIT
            KvCache cache = f.newCache();
            long t0 = System.nanoTime();
            float[] logits = f.forward(cache, prompt, false, null);
            long t1 = System.nanoTime();
            int next = Sampler.argmax(logits);
            for (int i = 0; i < decodeTokens; i++) {
                logits = f.forward(cache, new int[] {next}, false, null);
                next = Sampler.argmax(logits);
            }
            long t2 = System.nanoTime();
            if (r >= 0) {
                prefill[r] = promptTokens / ((t1 - t0) / 1e9);
                decode[r] = decodeTokens / ((t2 - t1) / 1e9);
            }
        }
        Arrays.sort(prefill);
        Arrays.sort(decode);
        out.printf("model: %s (hidden %d, %d layers, %d experts top-%d, vocab %d, %.1fM params)%n", model.directory(), c.hiddenSize(),
                c.numHiddenLayers(), c.numExperts(), c.numExpertsPerTok(), c.vocabSize(), c.parameterCount() / 1e6);
        out.printf("cpu: %d cores, dot product %s%n", Runtime.getRuntime().availableProcessors(), Main.vectorNote());
        out.printf("prefill %d tokens: %.1f tokens/s (median of %d; min %.1f, max %.1f)%n", promptTokens, prefill[runs / 2], runs, prefill[0], prefill[runs - 1]);
        out.printf("decode %d tokens after the prompt: %.1f tokens/s (median of %d; min %.1f, max %.1f)%n", decodeTokens, decode[runs / 2], runs, decode[0],
                decode[runs - 1]);
    }
}
