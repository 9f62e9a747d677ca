package io.ringserve.worker.service;

import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.protobuf.services.HealthStatusManager;
import io.ringserve.model.config.ConfigException;
import io.ringserve.model.sampling.SamplingParams;
import io.ringserve.model.sampling.StoppingParams;
import io.ringserve.model.config.ModelConfig;
import io.ringserve.protocol.v1.HiddenDtype;
import io.ringserve.protocol.v1.PipelineRole;
import io.ringserve.protocol.v1.PipelineStageGrpc;
import io.ringserve.protocol.v1.WorkerGrpc;
import io.ringserve.worker.cli.DemoModel;
import io.ringserve.worker.cuda.BackendSelector;
import io.ringserve.worker.cuda.CudaBackend;
import io.ringserve.worker.engine.Engine;
import io.ringserve.worker.engine.EngineEvent;
import io.ringserve.worker.engine.EngineRequest;
import io.ringserve.worker.engine.EngineSettings;
import io.ringserve.worker.engine.LocalModel;
import io.ringserve.worker.engine.ReferenceRunner;
import io.ringserve.worker.engine.StepRunner;
import io.ringserve.worker.engine.ShardRunner;
import io.ringserve.worker.pipeline.PipelineRunner;
import io.ringserve.worker.pipeline.ReferenceShard;
import io.ringserve.worker.pipeline.StageIdentity;
import io.ringserve.worker.pipeline.StageService;
import io.ringserve.worker.reference.LayerRange;
import io.ringserve.worker.weights.WeightsException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.boot.availability.AvailabilityChangeEvent;
import org.springframework.boot.availability.ReadinessState;
import org.springframework.context.ApplicationEventPublisher;
import org.springframework.context.SmartLifecycle;

/**
 * The model and the engine as the service's lifecycle sees them. Construction opens the model and builds the
 * engine (a model or setting that cannot be used fails startup); {@link #start} starts the engine loop and runs
 * a warm-up request before the worker reports ready; {@link #stop} drains (readiness down, new requests
 * refused, in-flight ones finish within {@code drain-timeout}); {@link #destroy} closes engine and model.
 * Its phase is above the gRPC server's, so it starts after the server and stops (drains) before it.
 *
 * <p>With {@code layers} the worker holds a shard of the model (docs/PIPELINE.md). The pipeline head (layer 0)
 * runs the engine over a {@link PipelineRunner}: it is ready only while the chain of stages behind it is whole,
 * and its warm-up waits for the chain. A later stage has no engine: it serves {@code ringserve.v1.PipelineStage}
 * through its {@link StageService} and is ready once its layers pass a self-test.
 */
public final class WorkerEngine implements SmartLifecycle, DisposableBean {
    private static final Logger LOG = LoggerFactory.getLogger(WorkerEngine.class);
    /** Stops before the gRPC server ({@link WorkerGrpcServer#PHASE}) and before the HTTP server's graceful shutdown. */
    public static final int PHASE = SmartLifecycle.DEFAULT_PHASE - 100;
    private static final Duration WARM_UP_TIMEOUT = Duration.ofMinutes(10);
    /** Pause between a pipeline head's attempts to (re)join its chain. */
    private static final Duration RECONNECT_DELAY = Duration.ofSeconds(1);

    private final WorkerProperties properties;
    private final HealthStatusManager health;
    private final ApplicationEventPublisher events;
    private final WorkerMetrics metrics;
    private final LocalModel model;
    private final String modelId;
    private final LayerRange layers;
    private final PipelineRole role;
    private final Engine engine;             // null on a stage after the head
    private final PipelineRunner pipeline;   // the head only
    private final StageService stage;        // a stage after the head only
    private final CudaBackend cuda;          // the CUDA backend's GPU, weights and runner; null on the CPU
    private final long weightBytes;
    private volatile boolean running;
    private volatile boolean warm;
    private volatile boolean draining;
    private volatile Thread pipelineWarmUp;

    public WorkerEngine(WorkerProperties properties, HealthStatusManager health, ApplicationEventPublisher events,
                        io.micrometer.core.instrument.MeterRegistry registry) {
        this.properties = properties;
        this.health = health;
        this.events = events;
        BackendSelector.Choice backend;
        try {
            backend = BackendSelector.select(BackendSelector.Requested.valueOf(properties.backend().name()));
        } catch (IllegalArgumentException e) {
            throw new WorkerStartupException("ringserve.worker.backend", e.getMessage(), e);
        }
        LOG.info("backend {}: {} ({})", properties.backend().name().toLowerCase(Locale.ROOT), backend.backend().name().toLowerCase(Locale.ROOT),
                backend.reason());
        Path dir = properties.model();
        if (dir == null) {
            dir = DemoModel.ensure();
            LOG.warn("no ringserve.worker.model given: serving the demo model in {} (random weights: its output is meaningless text)", dir);
        }
        this.layers = layerRange(properties, dir);
        this.role = layers.isAll() ? PipelineRole.WHOLE_MODEL : layers.isFirst() ? PipelineRole.PIPELINE_HEAD : PipelineRole.PIPELINE_STAGE;
        long t0 = System.nanoTime();
        LOG.info("loading model from {} ({} of safetensors{})", dir, gigabytes(safetensorsBytes(dir)), layers.isAll() ? "" : "; layers " + layers);
        try {
            this.model = LocalModel.open(dir, layers);
        } catch (ConfigException | WeightsException | UncheckedIOException e) {
            throw new WorkerStartupException("ringserve.worker.model", e.getMessage(), e);
        }
        this.weightBytes = model.heldBytes();
        double seconds = (System.nanoTime() - t0) / 1e9;
        LOG.info("loaded {} weights{} in {} s ({} GB/s)", gigabytes(weightBytes), layers.isAll() ? "" : " of layers " + layers,
                String.format(Locale.ROOT, "%.2f", seconds), String.format(Locale.ROOT, "%.2f", weightBytes / 1e9 / Math.max(seconds, 1e-9)));
        this.modelId = properties.modelId() != null ? properties.modelId() : dir.toAbsolutePath().normalize().getFileName().toString();
        this.metrics = new WorkerMetrics(registry, modelId);
        boolean onGpu = backend.backend() == BackendSelector.Backend.CUDA;
        if (role == PipelineRole.PIPELINE_STAGE) {
            CudaBackend gpu = null;
            try {
                gpu = onGpu ? loadOnGpu(dir, model.config(), layers) : null;
                ShardRunner shard = gpu != null ? gpu.runner() : new ReferenceShard(model.forward());
                this.stage = new StageService(shard, StageIdentity.of(dir, layers), properties.kvCacheBytes().toBytes(), properties.nextStage(),
                        properties.stageTimeout());
            } catch (RuntimeException e) {
                if (gpu != null) {
                    gpu.close();
                }
                model.close();
                throw e;
            }
            this.cuda = gpu;
            this.engine = null;
            this.pipeline = null;
            metrics.bind(stage);
            return;
        }
        this.stage = null;
        EngineSettings settings;
        StepRunner runner;
        CudaBackend gpu = null;
        try {
            settings = new EngineSettings(properties.maxRunning(), properties.maxWaiting(), properties.maxBatchTokens(), properties.kvBlockSize(),
                    properties.kvCacheBytes().toBytes());
            if (role == PipelineRole.PIPELINE_HEAD) {
                gpu = onGpu ? loadOnGpu(dir, model.config(), layers) : null;
                ShardRunner shard = gpu != null ? gpu.runner() : new ReferenceShard(model.forward());
                this.pipeline = new PipelineRunner(shard, StageIdentity.of(dir, layers), properties.nextStage(), properties.maxBatchTokens(),
                        new PipelineRunner.Settings(properties.stageTimeout(), properties.microBatches(), RECONNECT_DELAY, hiddenDtype(properties, onGpu),
                                properties.stepsInFlight()));
                runner = pipeline;
            } else if (onGpu) {
                this.pipeline = null;
                gpu = loadOnGpu(dir, model.config(), layers);
                runner = gpu.runner();
            } else {
                this.pipeline = null;
                runner = new ReferenceRunner(model.forward());
            }
            this.engine = new Engine(runner, model.eosTokenIds(), settings, metrics);
        } catch (IllegalArgumentException | WorkerStartupException e) {
            if (gpu != null) {
                gpu.close();
            }
            model.close();
            if (e instanceof WorkerStartupException w) {
                throw w;
            }
            throw new WorkerStartupException(e.getMessage().startsWith("kv-cache-bytes") ? "ringserve.worker.kv-cache-bytes" : "ringserve.worker",
                    e.getMessage(), e);
        }
        this.cuda = gpu;
        metrics.bind(engine);
        if (pipeline != null) {
            metrics.bind(pipeline);
            pipeline.setChainListener((whole, reason) -> updateHealth());
        }
    }

    /** The {@code layers} setting against the model's layer count, with {@code next-stage} consistent with it. */
    private static LayerRange layerRange(WorkerProperties properties, Path dir) {
        int total;
        try {
            total = ModelConfig.load(dir).numHiddenLayers();
        } catch (ConfigException | UncheckedIOException e) {
            throw new WorkerStartupException("ringserve.worker.model", e.getMessage(), e);
        }
        LayerRange range;
        try {
            range = properties.layers() == null ? LayerRange.all(total) : LayerRange.parse(properties.layers(), total);
        } catch (IllegalArgumentException e) {
            throw new WorkerStartupException("ringserve.worker.layers", e.getMessage(), e);
        }
        if (!range.isLast() && properties.nextStage() == null) {
            throw new WorkerStartupException("ringserve.worker.next-stage", "this worker holds layers " + range + " and not the last layer, so it needs"
                    + " the address (host:port) of the stage holding layers from " + range.end(), null);
        }
        if (range.isLast() && properties.nextStage() != null) {
            throw new WorkerStartupException("ringserve.worker.next-stage", "this worker holds the last layer (layers " + range
                    + "), so there is no next stage; unset next-stage (" + properties.nextStage() + ")", null);
        }
        return range;
    }

    private static long safetensorsBytes(Path dir) {
        if (!Files.isDirectory(dir)) {
            return 0;
        }
        try (Stream<Path> files = Files.list(dir)) {
            long total = 0;
            for (Path f : files.filter(p -> p.getFileName().toString().endsWith(".safetensors")).toList()) {
                total += Files.size(f);
            }
            return total;
        } catch (IOException e) {
            return 0;
        }
    }

    private static String gigabytes(long bytes) {
        return String.format(Locale.ROOT, "%.3f GB", bytes / 1e9);
    }

    // ---- lifecycle ---------------------------------------------------------------------------------

    @Override
    public void start() {
        if (draining) {
            throw new IllegalStateException("a drained worker cannot be started again; start a new process");
        }
        if (stage != null) {
            if (!stage.selfTest()) {
                throw new IllegalStateException("the self-test pass through layers " + layers + " produced non-finite values");
            }
            running = true;
            warm = true;
            updateHealth();
            LOG.info("pipeline stage ready: layers {} of {}; {}", layers, modelId,
                    stage.nextStage() == null ? "the last stage" : "next stage " + stage.nextStage());
            return;
        }
        engine.start();
        running = true;
        if (pipeline != null) {
            // the warm-up request needs the whole chain: run it once the chain first becomes whole
            pipelineWarmUp = Thread.ofPlatform().name("pipeline-warm-up").daemon(true).start(this::warmUpWhenWhole);
            LOG.info("pipeline head started: layers {} of {}; waiting for the chain through {}", layers, modelId, pipeline.nextStage());
            return;
        }
        warmUp();
        metrics.startRecording();
        warm = true;
        updateHealth();
        LOG.info("engine warm: {} ready", modelId);
    }

    private void warmUpWhenWhole() {
        while (!draining && running) {
            try {
                if (pipeline.isWhole()) {
                    warmUp();
                    metrics.startRecording();
                    warm = true;
                    updateHealth();
                    LOG.info("engine warm: {} ready as the head of a {}-stage pipeline", modelId, pipeline.stages());
                    return;
                }
                Thread.sleep(50);
            } catch (InterruptedException e) {
                return;
            } catch (IllegalStateException e) {
                LOG.warn("pipeline warm-up failed, retrying once the chain is whole: {}", e.getMessage());
            }
        }
    }

    /** gRPC health follows readiness: SERVING only while this worker accepts requests. */
    private void updateHealth() {
        ServingStatus status = isReady() ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
        health.setStatus("", status);
        health.setStatus(stage != null ? PipelineStageGrpc.SERVICE_NAME : WorkerGrpc.SERVICE_NAME, status);
    }

    /** One short greedy request through the engine itself: every step kind runs once before traffic arrives. */
    private void warmUp() {
        long t0 = System.nanoTime();
        Integer bos = model.config().bosTokenId();
        int token = bos != null && bos >= 0 && bos < model.config().vocabSize() ? bos : 0;
        CompletableFuture<EngineEvent> end = new CompletableFuture<>();
        EngineRequest request = new EngineRequest("warm-up", new int[] {token, token}, SamplingParams.greedy(),
                new StoppingParams(2, Set.of(), true), -1, null);
        engine.submit(request, e -> {
            if (!(e instanceof EngineEvent.Tokens)) {
                end.complete(e);
            }
        });
        EngineEvent result;
        try {
            result = end.get(WARM_UP_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted during the warm-up request", e);
        } catch (ExecutionException | TimeoutException e) {
            throw new IllegalStateException("the warm-up request did not finish within " + WARM_UP_TIMEOUT, e);
        }
        if (!(result instanceof EngineEvent.Finished)) {
            throw new IllegalStateException("the warm-up request failed: " + result);
        }
        LOG.info("warm-up request done in {} ms", (System.nanoTime() - t0) / 1_000_000);
    }

    /** Refuses new requests from now on (readiness down, gRPC health NOT_SERVING); in-flight ones continue. Idempotent. */
    public void drain() {
        if (draining) {
            return;
        }
        draining = true;
        updateHealth();
        AvailabilityChangeEvent.publish(events, this, ReadinessState.REFUSING_TRAFFIC);
        if (engine == null) {
            LOG.info("draining: pipeline stage {} stops with the head's requests", layers);
            return;
        }
        engine.drain();
        Engine.Load load = engine.load();
        LOG.info("draining: accepting no new requests; {} running, {} waiting", load.running(), load.waiting());
    }

    /** Drains and waits up to {@code drain-timeout} for in-flight requests; the gRPC server stops after this returns. */
    @Override
    public void stop() {
        drain();
        if (engine == null) {
            running = false;
            return;
        }
        try {
            if (engine.awaitIdle(properties.drainTimeout())) {
                LOG.info("drained: no request in flight");
            } else {
                Engine.Load load = engine.load();
                LOG.warn("drain timeout ({}) passed with {} running and {} waiting; they end with UNAVAILABLE", properties.drainTimeout(),
                        load.running(), load.waiting());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        running = false;
    }

    @Override
    public boolean isRunning() {
        return running;
    }

    @Override
    public int getPhase() {
        return PHASE;
    }

    @Override
    public void destroy() {
        running = false;
        Thread warmUp = pipelineWarmUp;
        if (warmUp != null) {
            warmUp.interrupt();
        }
        if (engine != null) {
            engine.close();
        }
        if (pipeline != null) {
            pipeline.close();
        }
        if (stage != null) {
            stage.close();
        }
        if (cuda != null) {
            cuda.close();
        }
        model.close();
    }

    /** How a head on this backend sends hidden states ({@code stage-dtype}). */
    static HiddenDtype hiddenDtype(WorkerProperties properties, boolean onGpu) {
        return switch (properties.stageDtype()) {
            case AUTO -> PipelineRunner.Settings.automaticHiddenDtype(onGpu);
            case FLOAT32 -> HiddenDtype.HIDDEN_FLOAT32;
            case BFLOAT16 -> HiddenDtype.HIDDEN_BFLOAT16;
        };
    }

    /** The weights of {@code layers} on GPU 0, with progress in the log; a failure names the backend property. */
    private static CudaBackend loadOnGpu(Path dir, io.ringserve.model.config.ModelConfig config, LayerRange layers) {
        long total = io.ringserve.worker.cuda.CudaWeights.deviceBytes(config, layers);
        long[] next = {0};
        long t0 = System.nanoTime();
        try {
            CudaBackend b = CudaBackend.load(dir, config, layers, copied -> {
                if (copied >= next[0]) {
                    LOG.info("copying weights to the GPU: {} of {}", gigabytes(copied), gigabytes(total));
                    next[0] = copied + Math.max(total / 10, 1);
                }
            });
            double seconds = (System.nanoTime() - t0) / 1e9;
            LOG.info("weights on {}: {} in {} s", b.device().name(), gigabytes(b.weights().bytes()), String.format(Locale.ROOT, "%.2f", seconds));
            return b;
        } catch (RuntimeException e) {
            throw new WorkerStartupException("ringserve.worker.backend", "cannot load the model onto the GPU: " + e.getMessage(), e);
        }
    }

    // ---- state -------------------------------------------------------------------------------------

    /** The engine; null on a pipeline stage after the head (it schedules nothing). */
    public Engine engine() {
        return engine;
    }

    /** The chain behind a pipeline head; null otherwise. */
    public PipelineRunner pipeline() {
        return pipeline;
    }

    /** The stage service of a pipeline stage after the head; null otherwise. */
    public StageService stage() {
        return stage;
    }

    /** The decoder layers this worker holds. */
    public LayerRange layers() {
        return layers;
    }

    public PipelineRole role() {
        return role;
    }

    /** The model's config (whatever the layers held). */
    public ModelConfig config() {
        return model.config();
    }

    /** The engine thread runs (a stage after the head has no engine: its gRPC threads are the gRPC server's). */
    public boolean isAlive() {
        return engine == null || engine.isAlive();
    }

    /** Engine steps, or micro-batches a stage after the head ran. */
    public long steps() {
        return engine != null ? engine.steps() : stage.steps();
    }

    /** A one-token pass through the layers held, on the calling thread. */
    public boolean selfTest() {
        return engine != null ? engine.selfTest() : stage.selfTest();
    }

    /** The engine's load; all zeros on a stage after the head. */
    public Engine.Load load() {
        return engine != null ? engine.load() : new Engine.Load(0, 0, 0, 0, draining);
    }

    /** Why a pipeline head is not ready although warm: the chain is not whole; null otherwise. */
    public String pipelineProblem() {
        return pipeline == null ? null : pipeline.brokenReason();
    }

    public LocalModel model() {
        return model;
    }

    public WorkerProperties properties() {
        return properties;
    }

    public String modelId() {
        return modelId;
    }

    public WorkerMetrics metrics() {
        return metrics;
    }

    public long weightBytes() {
        return weightBytes;
    }

    /** Weights loaded and warm-up done. */
    public boolean isWarm() {
        return warm;
    }

    public boolean isDraining() {
        return draining;
    }

    /** Accepting requests: warm, engine loop alive, not draining; a pipeline head also needs the whole chain. */
    public boolean isReady() {
        if (stage != null) {
            return warm && !draining;
        }
        return warm && !draining && engine.isAlive() && (pipeline == null || pipeline.isWhole());
    }

    /** The device the backend runs on, e.g. {@code cpu: 16 cores (amd64)}. */
    public String deviceName() {
        if (cuda != null) {
            return "cuda: " + cuda.device().name();
        }
        return "cpu: " + Runtime.getRuntime().availableProcessors() + " cores (" + System.getProperty("os.arch") + ")";
    }

    /** Whether the forward pass runs on the GPU. */
    public boolean onGpu() {
        return cuda != null;
    }
}
