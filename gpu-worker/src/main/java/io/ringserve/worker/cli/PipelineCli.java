package io.ringserve.worker.cli;

import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.ringserve.model.config.ModelConfig;
import io.ringserve.protocol.v1.HiddenDtype;
import io.ringserve.worker.cuda.BackendSelector;
import io.ringserve.worker.cuda.CudaBackend;
import io.ringserve.worker.cuda.CudaRunner;
import io.ringserve.worker.cuda.CudaWeights;
import io.ringserve.worker.demo.SyntheticCheckpoint;
import io.ringserve.worker.engine.LocalModel;
import io.ringserve.worker.engine.ShardRunner;
import io.ringserve.worker.engine.StepRunner;
import io.ringserve.worker.pipeline.PipelineRunner;
import io.ringserve.worker.pipeline.PipelineStats;
import io.ringserve.worker.pipeline.ReferenceShard;
import io.ringserve.worker.pipeline.StageChannels;
import io.ringserve.worker.pipeline.StageIdentity;
import io.ringserve.worker.pipeline.StageService;
import io.ringserve.worker.reference.LayerRange;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Supplier;

/**
 * Pipeline shards on the command line, without the worker service: {@code stage} serves the layers of a stage after
 * the head ({@code ringserve.v1.PipelineStage}) until the process is stopped, and {@code bench --layers 0-A
 * --next-stage HOST:PORT} runs the engine benchmark over a pipeline head whose chain continues there. Both take a model
 * directory or a preset (random weights: written on the GPU with {@code --dummy-weights}, or a synthetic checkpoint
 * on the CPU), on either backend; two processes on one GPU measure what the hops cost.
 */
final class PipelineCli {
    /** Stage-stream timeout of the command-line stages and heads. */
    static final Duration STAGE_TIMEOUT = Duration.ofSeconds(60);
    /** A stage's KV budget when {@code --kv-cache-bytes} is not given. */
    static final long DEFAULT_STAGE_KV_BYTES = 4L << 30;

    private final PrintStream out;
    private final PrintStream err;

    PipelineCli(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    /**
     * The weights of one layer range, opened for the chosen backend, and new shard runners over them.
     *
     * @param name      what the bench and the log call the model
     * @param device    where it runs, in words
     * @param heldBytes bytes of the held weights
     * @param newShard  a new runner over the weights (the caller closes it)
     * @param resources closed after every shard: the GPU, the mapped checkpoint, a temporary checkpoint
     */
    record Shards(ModelConfig config, LayerRange range, StageIdentity identity, String name, String device, long heldBytes,
                  Supplier<ShardRunner> newShard, CudaBackend gpu, AutoCloseable resources) implements AutoCloseable {
        @Override
        public void close() {
            try {
                resources.close();
            } catch (Exception e) {
                throw new IllegalStateException("closing " + name + ": " + e.getMessage(), e);
            }
        }
    }

    /** Opens {@code --model DIR} or {@code --preset NAME} for the layers {@code --layers} names, on {@code backend}. */
    Shards open(Options o, String layersText, BackendSelector.Backend backend) {
        boolean gpu = backend == BackendSelector.Backend.CUDA;
        if (o.has("preset") == o.has("model")) {
            throw new UsageException("give --model DIR or --preset NAME (one of them)");
        }
        if (o.boolValue("dummy-weights", false) && !o.has("preset")) {
            throw new UsageException("--dummy-weights needs --preset (the shape to fill with random weights)");
        }
        if (o.has("preset")) {
            String preset = o.get("preset");
            ModelConfig config = Main.preset(preset, gpu);
            LayerRange range = layers(layersText, config);
            StageIdentity identity = StageIdentity.of(config, range);
            if (gpu) {
                err.printf(Locale.ROOT, "filling layers %s of %s with random bf16 weights on the GPU (%.2f GB)...%n", range, preset,
                        CudaWeights.deviceBytes(config, range) / 1e9);
                CudaBackend cuda = CudaBackend.dummy(config, range, 7);
                return new Shards(config, range, identity, preset + " (dummy weights)", cuda.device().name(), cuda.weights().bytes(),
                        () -> new CudaRunner(cuda.device(), cuda.weights()), cuda, cuda);
            }
            if (config.parameterCount() > 2_000_000_000L) {
                throw new UsageException("--preset " + preset + " is a full-size shape, for the GPU; on the cpu use demo, mid or lite-mid");
            }
            Path tmp;
            try {
                tmp = Main.writeSyntheticPreset(preset, config, err);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot write the synthetic checkpoint: " + e.getMessage(), e);
            }
            LocalModel model;
            try {
                model = LocalModel.open(tmp.resolve("model"), range);
            } catch (RuntimeException e) {
                Main.deleteQuietly(tmp);
                throw e;
            }
            return new Shards(config, range, identity, preset, "cpu", model.heldBytes(), () -> new ReferenceShard(model.forward()), null, () -> {
                model.close();
                SyntheticCheckpoint.deleteTree(tmp);
            });
        }
        Path dir = Path.of(o.get("model"));
        ModelConfig config = ModelConfig.load(dir);
        LayerRange range = layers(layersText, config);
        StageIdentity identity = StageIdentity.of(dir, range);
        if (gpu) {
            CudaBackend cuda = CudaBackend.load(dir, config, range, null);
            return new Shards(config, range, identity, dir.toString(), cuda.device().name(), cuda.weights().bytes(),
                    () -> new CudaRunner(cuda.device(), cuda.weights()), cuda, cuda);
        }
        LocalModel model = LocalModel.open(dir, range);
        return new Shards(config, range, identity, dir.toString(), "cpu", model.heldBytes(), () -> new ReferenceShard(model.forward()), null, model);
    }

    private static LayerRange layers(String text, ModelConfig config) {
        try {
            return LayerRange.parse(text, config.numHiddenLayers());
        } catch (IllegalArgumentException e) {
            throw new UsageException("--layers: " + e.getMessage());
        }
    }

    /** {@code 4GB}, {@code 512MB}, {@code 1048576}: bytes, with an optional KB/MB/GB suffix (powers of 1024). */
    static long bytes(String text, String option) {
        String s = text.strip().toUpperCase(Locale.ROOT);
        long unit = 1;
        for (String[] suffix : new String[][] {{"GB", String.valueOf(1L << 30)}, {"MB", String.valueOf(1L << 20)}, {"KB", "1024"}, {"B", "1"}}) {
            if (s.endsWith(suffix[0])) {
                unit = Long.parseLong(suffix[1]);
                s = s.substring(0, s.length() - suffix[0].length()).strip();
                break;
            }
        }
        try {
            long v = Long.parseLong(s);
            if (v < 1) {
                throw new NumberFormatException();
            }
            return Math.multiplyExact(v, unit);
        } catch (NumberFormatException | ArithmeticException e) {
            throw new UsageException(option + ": '" + text + "' is not a positive size (bytes, or with KB, MB or GB)");
        }
    }

    // ---- stage ------------------------------------------------------------------------------------

    /**
     * Serves a stage after the head on {@code --port} until the process is stopped (or the calling thread is
     * interrupted); prints one line saying where it listens once the layers passed a self-test.
     */
    void stage(Options o, BackendSelector.Choice backend) {
        String next = o.get("next-stage", null);
        int port = o.intValue("port", -1);
        if (port < 0 || port > 65535) {
            throw new UsageException("--port N is required (0: any free port)");
        }
        long kvBytes = bytes(o.get("kv-cache-bytes", String.valueOf(DEFAULT_STAGE_KV_BYTES)), "--kv-cache-bytes");
        try (Shards shards = open(o, o.required("layers"), backend.backend())) {
            LayerRange range = shards.range();
            if (range.isFirst()) {
                throw new UsageException("--layers " + o.get("layers") + " hold layer 0: that is the pipeline head (bench --layers " + range.start() + "-"
                        + range.end() + " --next-stage HOST:PORT, or the worker service), not a stage");
            }
            if (range.isLast() != (next == null)) {
                throw new UsageException(range.isLast() ? "--layers " + o.get("layers") + " hold the last layer: this is the last stage, give no --next-stage"
                        : "--layers " + o.get("layers") + " do not reach the last layer (" + range.total() + "): give --next-stage HOST:PORT");
            }
            ShardRunner shard = shards.newShard().get();
            StageService service = new StageService(shard, shards.identity(), kvBytes, next, STAGE_TIMEOUT);
            Server server = null;
            try {
                if (!service.selfTest()) {
                    throw new IllegalStateException("the self-test pass through layers " + range + " produced non-finite values");
                }
                try {
                    server = StageChannels.configure(NettyServerBuilder.forAddress(new InetSocketAddress(port))).addService(service).build().start();
                } catch (IOException e) {
                    throw new UncheckedIOException("--port " + port + ": cannot listen (" + e.getMessage() + ")", e);
                }
                Server listening = server;
                Thread stop = new Thread(listening::shutdownNow, "stage-shutdown");
                Runtime.getRuntime().addShutdownHook(stop);
                out.printf(Locale.ROOT, "stage: layers %s of %s, on %s (%.2f GB of weights); listening on port %d; %s%n", range, shards.name(), shards.device(),
                        shards.heldBytes() / 1e9, server.getPort(), next == null ? "the last stage" : "next stage " + next);
                out.flush();
                try {
                    server.awaitTermination();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                try {
                    Runtime.getRuntime().removeShutdownHook(stop);
                } catch (IllegalStateException e) {
                    // already shutting down
                }
                err.println("stage: stopped after " + service.steps() + " micro-batches");
            } finally {
                if (server != null) {
                    server.shutdownNow();
                }
                service.close();
                shard.close();
            }
        }
    }

    // ---- bench over a pipeline head ----------------------------------------------------------------

    /**
     * The engine benchmark over a pipeline head: its layers here, the rest of the chain behind {@code --next-stage};
     * per batch size, the engine's numbers and where each step's time went (every stage's compute, and the rest:
     * hops, encoding, waiting).
     */
    void bench(Options o, BackendSelector.Choice backend, int[] batches, int promptLen, int genLen, int repeats, Path json) {
        String next = o.get("next-stage", null);
        if (next == null) {
            throw new UsageException("--layers runs the bench over a pipeline head: give --next-stage HOST:PORT of the stage after it");
        }
        int microBatches = o.intValue("micro-batches", 0);
        if (microBatches < 0) {
            throw new UsageException("--micro-batches must be >= 0 (0: one per stage)");
        }
        int stepsInFlight = o.intValue("steps-in-flight", 1);
        if (stepsInFlight < 1) {
            throw new UsageException("--steps-in-flight must be >= 1 (1: one engine step in the chain at a time)");
        }
        boolean gpu = backend.backend() == BackendSelector.Backend.CUDA;
        HiddenDtype dtype = switch (o.get("stage-dtype", "auto")) {
            case "auto" -> PipelineRunner.Settings.automaticHiddenDtype(gpu);
            case "float32" -> HiddenDtype.HIDDEN_FLOAT32;
            case "bfloat16" -> HiddenDtype.HIDDEN_BFLOAT16;
            default -> throw new UsageException("--stage-dtype must be auto, float32 or bfloat16");
        };
        try (Shards shards = open(o, o.required("layers"), backend.backend())) {
            LayerRange range = shards.range();
            if (!range.isFirst() || range.isLast()) {
                throw new UsageException("--layers " + o.get("layers") + ": a pipeline head holds layer 0 and not the last layer (" + range.total() + ")");
            }
            ModelConfig c = shards.config();
            out.printf(Locale.ROOT, "model: %s (hidden %d, %d layers, %d experts top-%d, vocab %d, %.1fM params); pipeline head: layers %s on %s,"
                            + " next stage %s; hidden states %s, micro-batches %s, steps in flight %d%n", shards.name(), c.hiddenSize(), c.numHiddenLayers(), c.numExperts(),
                    c.numExpertsPerTok(), c.vocabSize(), c.parameterCount() / 1e6, range, shards.device(), next,
                    dtype == HiddenDtype.HIDDEN_FLOAT32 ? "float32" : "bfloat16", microBatches == 0 ? "one per stage" : String.valueOf(microBatches),
                    stepsInFlight);
            out.printf("%d-token prompts, %d generated tokens per request%n", promptLen, genLen);
            PipelineRunner.Settings settings = new PipelineRunner.Settings(STAGE_TIMEOUT, microBatches, Duration.ofMillis(200), dtype, stepsInFlight);
            List<EngineBench.Result> results = new ArrayList<>();
            for (int batch : batches) {
                List<PipelineRunner> heads = new ArrayList<>();
                Supplier<StepRunner> runners = () -> {
                    PipelineRunner head = new PipelineRunner(shards.newShard().get(), shards.identity(), next, EngineBench.maxBatchTokens(batch), settings)
                            .owningShard();
                    heads.add(head);
                    return head;
                };
                results.addAll(EngineBench.run(runners, c, new int[] {batch}, promptLen, genLen, repeats, out));
                out.println("          " + describe(heads.subList(1, heads.size()))); // the first run warmed up
            }
            double bandwidth = gpu ? shards.gpu().copyBandwidth(1L << 30, 10) : EngineBench.hostCopyBandwidth();
            if (json != null) {
                Main.writeAtomically(json, EngineBench.json(new EngineBench.Setup(shards.name() + ", pipeline head layers " + range + " -> " + next,
                        gpu ? "cuda" : "cpu", shards.device(), promptLen, genLen, repeats, shards.heldBytes(), bandwidth,
                        gpu ? shards.gpu().memoryUsed() : shards.heldBytes()), c, results).getBytes(StandardCharsets.UTF_8));
            }
        }
    }

    /** Where the timed runs' steps went: per step, each stage's compute and the rest (hops, encoding, waiting). */
    static String describe(List<PipelineRunner> heads) {
        PipelineStats total = null;
        for (PipelineRunner h : heads) {
            total = total == null ? h.stats() : total.plus(h.stats());
        }
        if (total == null || total.steps() == 0) {
            return "pipeline: no steps";
        }
        double wall = total.wallNanos() / 1e3 / total.steps();
        long busySum = 0;
        StringBuilder stages = new StringBuilder();
        for (int k = 0; k < total.stages(); k++) {
            busySum += total.busyNanos()[k];
            stages.append(String.format(Locale.ROOT, "%s%s %.0f", k == 0 ? "" : " + ", k == 0 ? "head" : "stage " + k, total.busyNanos()[k] / 1e3
                    / total.steps()));
        }
        double rest = (total.wallNanos() - busySum) / 1e3 / total.steps();
        int hops = Math.max(1, total.stages() - 1);
        boolean overlap = total.microBatches() != total.steps() || heads.stream().anyMatch(h -> h.mostStepsInFlight() > 1);
        String between = !overlap
                ? String.format(Locale.ROOT, " + %.0f us between stages (%.0f us per hop, there and back)", rest, rest / hops)
                : " (the stages overlap micro-batches or steps; --micro-batches 1 --steps-in-flight 1 give the per-hop cost)";
        return String.format(Locale.ROOT, "pipeline: %d stages, %.2f micro-batches/step; per step %.0f us = %s us computing%s; bubble %.1f%%",
                total.stages(), (double) total.microBatches() / total.steps(), wall, stages, between, 100 * total.bubble());
    }
}
