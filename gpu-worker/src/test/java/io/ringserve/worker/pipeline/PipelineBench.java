package io.ringserve.worker.pipeline;

import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.ringserve.model.config.ModelConfig;
import io.ringserve.model.sampling.SamplingParams;
import io.ringserve.model.sampling.StoppingParams;
import io.ringserve.worker.demo.SyntheticCheckpoint;
import io.ringserve.worker.engine.Engine;
import io.ringserve.worker.engine.EngineEvent;
import io.ringserve.worker.engine.EngineObserver;
import io.ringserve.worker.engine.EngineRequest;
import io.ringserve.worker.engine.EngineSettings;
import io.ringserve.worker.engine.ReferenceRunner;
import io.ringserve.worker.engine.StepRunner;
import io.ringserve.worker.reference.LayerRange;
import io.ringserve.worker.reference.ModelWeights;
import io.ringserve.worker.reference.ReferenceForward;
import io.ringserve.worker.weights.SafetensorsCheckpoint;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Benchmark (not a unit test): where a pipeline's time goes. A synthetic checkpoint is cut into 2 and 3 stages
 * on loopback in this JVM (real gRPC, float32 hidden states); N concurrent greedy streams decode through the
 * head's engine. Measured over the decode phase (from the moment every stream has its first token to the end):
 * aggregate tokens/s, each stage's utilization and the bubble ({@link PipelineStats#bubble()}), once with
 * micro-batching off (1 micro-batch per step) and once on (one per stage), next to one whole-model worker.
 * All stages share this machine's cores, so the stages' compute competes whenever it overlaps.
 *
 * <p>Options (system properties): {@code bench.preset} demo|mid (mid), {@code bench.stages} (2,3),
 * {@code bench.streams} (16), {@code bench.prompt} (32), {@code bench.decode} (48), {@code bench.repeat} (3: each
 * configuration runs this often and the run with the median tokens/s is reported).
 */
public final class PipelineBench {

    record Result(String layout, int microBatches, double tokensPerSecond, PipelineStats stats) {
    }

    public static void main(String[] args) throws Exception {
        String preset = System.getProperty("bench.preset", "mid");
        int streams = Integer.getInteger("bench.streams", 16);
        int prompt = Integer.getInteger("bench.prompt", 32);
        int decode = Integer.getInteger("bench.decode", 48);
        int repeat = Integer.getInteger("bench.repeat", 3);
        ModelConfig config = switch (preset) {
            case "demo" -> SyntheticCheckpoint.demoConfig();
            case "mid" -> SyntheticCheckpoint.midConfig();
            default -> throw new IllegalArgumentException("bench.preset must be demo or mid");
        };
        Path tmp = Files.createTempDirectory("pipeline-bench-");
        Path dir = tmp.resolve("model");
        try {
            SyntheticCheckpoint.write(dir, config, 7, 0);
            System.out.printf(Locale.ROOT, "model: synthetic %s (hidden %d, %d layers, %d experts top-%d, vocab %d, %.0fM params); %d cores%n", preset,
                    config.hiddenSize(), config.numHiddenLayers(), config.numExperts(), config.numExpertsPerTok(), config.vocabSize(),
                    config.parameterCount() / 1e6, Runtime.getRuntime().availableProcessors());
            System.out.printf(Locale.ROOT, "workload: %d concurrent greedy streams, %d-token prompts, %d decoded tokens each%n", streams, prompt, decode);
            List<Result> results = new ArrayList<>();
            try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir)) {
                run(ckpt, config, dir, 1, 1, streams, prompt, decode); // warms up the JIT
                results.add(median(ckpt, config, dir, 1, 1, streams, prompt, decode, repeat));
                for (String s : System.getProperty("bench.stages", "2,3").split(",")) {
                    int stages = Integer.parseInt(s.strip());
                    results.add(median(ckpt, config, dir, stages, 1, streams, prompt, decode, repeat));
                    results.add(median(ckpt, config, dir, stages, 0, streams, prompt, decode, repeat));
                }
            }
            System.out.println();
            System.out.println("| stages (layers) | micro-batches per step | decode tokens/s | busy per stage | bubble | ideal bubble (S-1)/(M+S-1) |");
            System.out.println("|---|---|---|---|---|---|");
            for (Result r : results) {
                if (r.stats() == null) {
                    System.out.printf(Locale.ROOT, "| 1 (%s, whole model) | - | %.1f | - | - | - |%n", r.layout(), r.tokensPerSecond());
                    continue;
                }
                int s = r.stats().stages();
                int m = r.microBatches() == 0 ? s : r.microBatches();
                StringBuilder busy = new StringBuilder();
                for (int k = 0; k < s; k++) {
                    busy.append(k == 0 ? "" : " / ").append(String.format(Locale.ROOT, "%.0f%%", 100 * r.stats().utilization(k)));
                }
                System.out.printf(Locale.ROOT, "| %d (%s) | %d | %.1f | %s | %.1f%% | %.1f%% |%n", s, r.layout(), m, r.tokensPerSecond(), busy,
                        100 * r.stats().bubble(), 100.0 * (s - 1) / (m + s - 1));
            }
        } finally {
            SyntheticCheckpoint.deleteTree(tmp);
        }
    }

    /** Even layer ranges, rounding up from the front (the last stage, which also runs the lm_head, gets the fewest). */
    static List<LayerRange> layout(int layers, int stages) {
        List<LayerRange> out = new ArrayList<>();
        for (int i = 0; i < stages; i++) {
            out.add(new LayerRange((i * layers + stages - 1) / stages, ((i + 1) * layers + stages - 1) / stages, layers));
        }
        return out;
    }

    /** Runs a configuration {@code repeat} times; the run with the median tokens/s. */
    static Result median(SafetensorsCheckpoint ckpt, ModelConfig config, Path dir, int stages, int microBatches, int streams, int prompt, int decode,
                         int repeat) throws Exception {
        List<Result> runs = new ArrayList<>();
        for (int i = 0; i < repeat; i++) {
            runs.add(run(ckpt, config, dir, stages, microBatches, streams, prompt, decode));
        }
        runs.sort(java.util.Comparator.comparingDouble(Result::tokensPerSecond));
        return runs.get(runs.size() / 2);
    }

    static Result run(SafetensorsCheckpoint ckpt, ModelConfig config, Path dir, int stages, int microBatches, int streams, int prompt, int decode)
            throws Exception {
        List<LayerRange> layout = layout(config.numHiddenLayers(), stages);
        StringBuilder text = new StringBuilder();
        for (LayerRange r : layout) {
            text.append(text.isEmpty() ? "" : ",").append(r.start()).append('-').append(r.end());
        }
        EngineSettings settings = new EngineSettings(64, 1024, 512, 16, 256L << 20);
        List<Server> servers = new ArrayList<>();
        List<StageService> services = new ArrayList<>();
        StepRunner runner;
        PipelineRunner head = null;
        if (stages == 1) {
            runner = new ReferenceRunner(new ReferenceForward(ModelWeights.load(config, ckpt)));
        } else {
            String next = null;
            for (int i = stages - 1; i >= 1; i--) {
                StageService s = new StageService(new ReferenceForward(ModelWeights.load(config, ckpt, layout.get(i))), StageIdentity.of(dir, layout.get(i)),
                        1L << 30, next, Duration.ofSeconds(30));
                Server server = StageChannels.configure(NettyServerBuilder.forAddress(new InetSocketAddress("localhost", 0))).addService(s).build().start();
                services.add(s);
                servers.add(server);
                next = "localhost:" + server.getPort();
            }
            head = new PipelineRunner(new ReferenceForward(ModelWeights.load(config, ckpt, layout.getFirst())), StageIdentity.of(dir, layout.getFirst()),
                    next, settings.maxBatchTokens(), new PipelineRunner.Settings(Duration.ofSeconds(60), microBatches, Duration.ofMillis(100)));
            runner = head;
        }
        try (Engine engine = new Engine(runner, Set.of(), settings, EngineObserver.NONE).start()) {
            while (head != null && !head.isWhole()) {
                Thread.sleep(10);
            }
            CountDownLatch firstTokens = new CountDownLatch(streams);
            CountDownLatch done = new CountDownLatch(streams);
            AtomicLong generated = new AtomicLong();
            AtomicInteger failures = new AtomicInteger();
            for (int i = 0; i < streams; i++) {
                SplittableRandom rng = new SplittableRandom(100 + i);
                int[] p = new int[prompt];
                for (int t = 0; t < prompt; t++) {
                    p[t] = rng.nextInt(Math.min(config.vocabSize(), 1536));
                }
                AtomicInteger mine = new AtomicInteger();
                engine.submit(new EngineRequest("bench-" + i, p, SamplingParams.greedy(), new StoppingParams(decode, Set.of(), true), -1, null), e -> {
                    switch (e) {
                        case EngineEvent.Tokens t -> {
                            generated.addAndGet(t.ids().length);
                            if (mine.getAndAdd(t.ids().length) == 0) {
                                firstTokens.countDown();
                            }
                        }
                        case EngineEvent.Finished f -> done.countDown();
                        case EngineEvent.Failed f -> {
                            failures.incrementAndGet();
                            firstTokens.countDown();
                            done.countDown();
                        }
                    }
                });
            }
            firstTokens.await();
            long g0 = generated.get();
            long t0 = System.nanoTime();
            PipelineStats s0 = head == null ? null : head.stats();
            done.await();
            long t1 = System.nanoTime();
            if (failures.get() > 0) {
                throw new IllegalStateException(failures.get() + " requests failed");
            }
            PipelineStats stats = head == null ? null : head.stats().since(s0);
            double rate = (generated.get() - g0) / ((t1 - t0) / 1e9);
            System.out.printf(Locale.ROOT, "%s, micro-batches %s: %.1f decode tokens/s%s%n", text, stages == 1 ? "-" : microBatches == 0 ? "per stage" : "1",
                    rate, stats == null ? "" : "; " + stats);
            return new Result(text.toString(), microBatches, rate, stats);
        } finally {
            if (head != null) {
                head.close();
            }
            for (Server s : servers) {
                s.shutdownNow();
            }
            for (StageService s : services) {
                s.close();
            }
        }
    }
}
