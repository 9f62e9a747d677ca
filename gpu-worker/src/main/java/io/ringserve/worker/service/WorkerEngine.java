package io.ringserve.worker.service;

import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.protobuf.services.HealthStatusManager;
import io.ringserve.model.config.ConfigException;
import io.ringserve.model.sampling.SamplingParams;
import io.ringserve.model.sampling.StoppingParams;
import io.ringserve.protocol.v1.WorkerGrpc;
import io.ringserve.worker.cli.DemoModel;
import io.ringserve.worker.engine.Engine;
import io.ringserve.worker.engine.EngineEvent;
import io.ringserve.worker.engine.EngineRequest;
import io.ringserve.worker.engine.EngineSettings;
import io.ringserve.worker.engine.LocalModel;
import io.ringserve.worker.engine.ReferenceRunner;
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
 */
public final class WorkerEngine implements SmartLifecycle, DisposableBean {
    private static final Logger LOG = LoggerFactory.getLogger(WorkerEngine.class);
    /** Stops before the gRPC server ({@link WorkerGrpcServer#PHASE}) and before the HTTP server's graceful shutdown. */
    public static final int PHASE = SmartLifecycle.DEFAULT_PHASE - 100;
    private static final Duration WARM_UP_TIMEOUT = Duration.ofMinutes(10);

    private final WorkerProperties properties;
    private final HealthStatusManager health;
    private final ApplicationEventPublisher events;
    private final WorkerMetrics metrics;
    private final LocalModel model;
    private final String modelId;
    private final Engine engine;
    private final long weightBytes;
    private volatile boolean running;
    private volatile boolean warm;
    private volatile boolean draining;

    public WorkerEngine(WorkerProperties properties, HealthStatusManager health, ApplicationEventPublisher events,
                        io.micrometer.core.instrument.MeterRegistry registry) {
        this.properties = properties;
        this.health = health;
        this.events = events;
        if (properties.backend() == WorkerProperties.Backend.CUDA) {
            throw new WorkerStartupException("ringserve.worker.backend", "cuda was requested, but this build has no CUDA backend; use cpu or auto",
                    null);
        }
        Path dir = properties.model();
        if (dir == null) {
            dir = DemoModel.ensure();
            LOG.warn("no ringserve.worker.model given: serving the demo model in {} (random weights: its output is meaningless text)", dir);
        }
        this.weightBytes = safetensorsBytes(dir);
        LOG.info("loading model from {} ({} of safetensors)", dir, gigabytes(weightBytes));
        long t0 = System.nanoTime();
        try {
            this.model = LocalModel.open(dir);
        } catch (ConfigException | WeightsException | UncheckedIOException e) {
            throw new WorkerStartupException("ringserve.worker.model", e.getMessage(), e);
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        LOG.info("loaded {} weights in {} s ({} GB/s)", gigabytes(weightBytes), String.format(Locale.ROOT, "%.2f", seconds),
                String.format(Locale.ROOT, "%.2f", weightBytes / 1e9 / Math.max(seconds, 1e-9)));
        this.modelId = properties.modelId() != null ? properties.modelId() : dir.toAbsolutePath().normalize().getFileName().toString();
        this.metrics = new WorkerMetrics(registry, modelId);
        EngineSettings settings;
        try {
            settings = new EngineSettings(properties.maxRunning(), properties.maxWaiting(), properties.maxBatchTokens(), properties.kvBlockSize(),
                    properties.kvCacheBytes().toBytes());
            this.engine = new Engine(new ReferenceRunner(model.forward()), model.eosTokenIds(), settings, metrics);
        } catch (IllegalArgumentException e) {
            model.close();
            throw new WorkerStartupException(e.getMessage().startsWith("kv-cache-bytes") ? "ringserve.worker.kv-cache-bytes" : "ringserve.worker",
                    e.getMessage(), e);
        }
        metrics.bind(engine);
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
        engine.start();
        running = true;
        warmUp();
        metrics.startRecording();
        warm = true;
        health.setStatus("", ServingStatus.SERVING);
        health.setStatus(WorkerGrpc.SERVICE_NAME, ServingStatus.SERVING);
        LOG.info("engine warm: {} ready", modelId);
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
        health.setStatus("", ServingStatus.NOT_SERVING);
        health.setStatus(WorkerGrpc.SERVICE_NAME, ServingStatus.NOT_SERVING);
        AvailabilityChangeEvent.publish(events, this, ReadinessState.REFUSING_TRAFFIC);
        engine.drain();
        Engine.Load load = engine.load();
        LOG.info("draining: accepting no new requests; {} running, {} waiting", load.running(), load.waiting());
    }

    /** Drains and waits up to {@code drain-timeout} for in-flight requests; the gRPC server stops after this returns. */
    @Override
    public void stop() {
        drain();
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
        engine.close();
        model.close();
    }

    // ---- state -------------------------------------------------------------------------------------

    public Engine engine() {
        return engine;
    }

    public LocalModel model() {
        return model;
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

    /** Accepting requests: warm, engine loop alive, not draining. */
    public boolean isReady() {
        return warm && !draining && engine.isAlive();
    }

    /** The device the backend runs on, e.g. {@code cpu: 16 cores (amd64)}. */
    public String deviceName() {
        return "cpu: " + Runtime.getRuntime().availableProcessors() + " cores (" + System.getProperty("os.arch") + ")";
    }
}
