package io.ringserve.worker.cli;

import io.ringserve.model.config.ModelConfig;
import io.ringserve.model.sampling.SamplingParams;
import io.ringserve.model.sampling.StoppingParams;
import io.ringserve.worker.engine.Engine;
import io.ringserve.worker.engine.EngineEvent;
import io.ringserve.worker.engine.EngineObserver;
import io.ringserve.worker.engine.EngineRequest;
import io.ringserve.worker.engine.EngineSettings;
import io.ringserve.worker.engine.LocalModel;
import io.ringserve.worker.engine.ReferenceRunner;
import io.ringserve.worker.engine.Sampler;
import io.ringserve.worker.reference.KvCache;
import io.ringserve.worker.reference.ReferenceForward;
import java.io.PrintStream;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;

/** CPU reference throughput: batch-1 prefill and decode tokens/s, median of several runs. */
final class Bench {
    private Bench() {
    }

    /**
     * Aggregate generation throughput of the continuous-batching engine: {@code streams} requests submitted
     * together, each a random {@code promptTokens} prompt and exactly {@code decodeTokens} generated tokens.
     */
    static void concurrent(LocalModel model, int[] streamCounts, int promptTokens, int decodeTokens, PrintStream out) {
        out.printf("engine: continuous batching, %d-token prompts, %d generated tokens per stream, default settings %s%n", promptTokens,
                decodeTokens, EngineSettings.defaults());
        for (int streams : streamCounts) {
            double[] rates = new double[3];
            double[] ttft = new double[3];
            for (int r = -1; r < rates.length; r++) { // r = -1 warms up
                try (Engine engine = new Engine(new ReferenceRunner(model.forward()), model.eosTokenIds(), EngineSettings.defaults(), EngineObserver.NONE).start()) {
                    CountDownLatch done = new CountDownLatch(streams);
                    AtomicLong firstTokenNanos = new AtomicLong();
                    AtomicLong generated = new AtomicLong();
                    long t0 = System.nanoTime();
                    for (int i = 0; i < streams; i++) {
                        int[] prompt = randomPrompt(model.config(), promptTokens, 100 + i);
                        EngineRequest req = new EngineRequest("bench-" + i, prompt, SamplingParams.greedy(),
                                new StoppingParams(decodeTokens, java.util.Set.of(), true), -1, null);
                        engine.submit(req, e -> {
                            switch (e) {
                                case EngineEvent.Tokens t -> {
                                    generated.addAndGet(t.ids().length);
                                    firstTokenNanos.compareAndSet(0, System.nanoTime() - t0);
                                }
                                case EngineEvent.Finished f -> done.countDown();
                                case EngineEvent.Failed f -> {
                                    out.println("request failed: " + f.message());
                                    done.countDown();
                                }
                            }
                        });
                    }
                    done.await();
                    long t1 = System.nanoTime();
                    if (r >= 0) {
                        rates[r] = generated.get() / ((t1 - t0) / 1e9);
                        ttft[r] = firstTokenNanos.get() / 1e6;
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
            Arrays.sort(rates);
            Arrays.sort(ttft);
            out.printf("%3d streams: %8.1f generated tokens/s aggregate (median of %d; min %.1f, max %.1f), first token after %.1f ms%n", streams,
                    rates[1], rates.length, rates[0], rates[2], ttft[1]);
        }
    }

    private static int[] randomPrompt(ModelConfig c, int length, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        int[] prompt = new int[length];
        for (int i = 0; i < length; i++) {
            prompt[i] = rng.nextInt(Math.min(c.vocabSize(), 1536));
        }
        return prompt;
    }

    static void run(LocalModel model, int promptTokens, int decodeTokens, PrintStream out) {
        ReferenceForward f = model.forward();
        ModelConfig c = model.config();
        int[] prompt = randomPrompt(c, promptTokens, 1);
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
