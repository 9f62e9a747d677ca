package io.ringserve.worker.service;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.ringserve.worker.engine.Engine;
import io.ringserve.worker.engine.EngineEvent;
import io.ringserve.worker.engine.EngineObserver;
import io.ringserve.worker.pipeline.PipelineRunner;
import io.ringserve.worker.pipeline.StageService;
import java.time.Duration;
import java.util.EnumMap;
import java.util.Locale;
import java.util.Map;
import java.util.function.ToDoubleFunction;

/**
 * Engine measurements as Prometheus metrics under the names vLLM exports (what the Gateway API Inference
 * Extension and vLLM dashboards read), each tagged {@code model_name}; worker-specific ones start with
 * {@code ringserve_}. Called on the engine thread: every method only increments or records.
 */
public final class WorkerMetrics implements EngineObserver {
    /** Latency buckets in seconds, as vLLM's time-to-first-token histogram. */
    private static final double[] TTFT_BUCKETS = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
        10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
    /** Latency buckets in seconds, as vLLM's inter-token latency histogram. */
    private static final double[] ITL_BUCKETS = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
        20.0, 40.0, 80.0};

    private final MeterRegistry registry;
    private final Tags tags;
    private final Counter promptTokens;
    private final Counter generationTokens;
    private final Counter preemptions;
    private final Map<EngineEvent.FinishReason, Counter> success = new EnumMap<>(EngineEvent.FinishReason.class);
    private final Map<EngineEvent.ErrorCode, Counter> errors = new EnumMap<>(EngineEvent.ErrorCode.class);
    private final Timer timeToFirstToken;
    private final Timer interTokenLatency;
    private final Timer timePerOutputToken;
    private volatile boolean recording;

    public WorkerMetrics(MeterRegistry registry, String modelName) {
        this.registry = registry;
        this.tags = Tags.of("model_name", modelName);
        // Micrometer appends _total to counters and _seconds to timers in the Prometheus format
        promptTokens = Counter.builder("vllm:prompt_tokens").description("Prefill tokens processed").tags(tags).register(registry);
        generationTokens = Counter.builder("vllm:generation_tokens").description("Generation tokens processed").tags(tags).register(registry);
        preemptions = Counter.builder("vllm:num_preemptions").description("Cumulative number of preemptions from the engine").tags(tags)
                .register(registry);
        for (EngineEvent.FinishReason reason : EngineEvent.FinishReason.values()) {
            success.put(reason, Counter.builder("vllm:request_success").description("Count of successfully processed requests").tags(tags)
                    .tag("finished_reason", finishedReason(reason)).register(registry));
        }
        for (EngineEvent.ErrorCode code : EngineEvent.ErrorCode.values()) {
            errors.put(code, Counter.builder("ringserve_request_errors").description("Requests that ended with an error, by error code").tags(tags)
                    .tag("code", code.name().toLowerCase(Locale.ROOT)).register(registry));
        }
        timeToFirstToken = histogram("vllm:time_to_first_token", "Histogram of time to first token in seconds", TTFT_BUCKETS);
        interTokenLatency = histogram("vllm:inter_token_latency", "Histogram of inter-token latency in seconds", ITL_BUCKETS);
        timePerOutputToken = histogram("vllm:time_per_output_token", "Histogram of time per output token in seconds (alias of inter-token latency)",
                ITL_BUCKETS);
    }

    private Timer histogram(String name, String description, double[] bucketsSeconds) {
        Duration[] slos = new Duration[bucketsSeconds.length];
        for (int i = 0; i < slos.length; i++) {
            slos[i] = Duration.ofNanos(Math.round(bucketsSeconds[i] * 1e9));
        }
        return Timer.builder(name).description(description).tags(tags).serviceLevelObjectives(slos).register(registry);
    }

    /** vLLM's {@code finished_reason} label: stop, length or abort. */
    static String finishedReason(EngineEvent.FinishReason reason) {
        return switch (reason) {
            case EOS, STOP_TOKEN -> "stop";
            case LENGTH -> "length";
            case CANCELLED -> "abort";
        };
    }

    /** Registers the gauges that read the engine's published load. */
    public void bind(Engine engine) {
        gauge("vllm:num_requests_running", "Number of requests in model execution batches", engine, e -> e.load().running());
        gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed", engine, e -> e.load().waiting());
        gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage", engine, e -> e.load().kvUsage());
        gauge("vllm:gpu_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage (older vLLM name)", engine, e -> e.load().kvUsage());
        gauge("ringserve_kv_block_size", "Token positions per KV cache block", engine, Engine::kvBlockSize);
        // not ..._blocks_total: the Prometheus client reserves the _total suffix for counters and strips it from gauges
        gauge("ringserve_kv_total_blocks", "KV cache blocks the worker holds", engine, Engine::kvTotalBlocks);
        gauge("ringserve_kv_free_blocks", "KV cache blocks not in use", engine, e -> e.load().freeBlocks());
    }

    /** Registers the gauges of a pipeline head's chain: whole or not, stages, and the bubble since start. */
    public void bind(PipelineRunner pipeline) {
        Gauge.builder("ringserve_pipeline_whole", pipeline, p -> p.isWhole() ? 1 : 0).description("1 while every pipeline stage has joined the chain")
                .tags(tags).strongReference(true).register(registry);
        Gauge.builder("ringserve_pipeline_stages", pipeline, PipelineRunner::stages).description("Stages in the pipeline, the head included")
                .tags(tags).strongReference(true).register(registry);
        Gauge.builder("ringserve_pipeline_bubble_ratio", pipeline, p -> p.stats().bubble())
                .description("Fraction of the stages' step time spent idle (pipeline fill and drain, hops), since start").tags(tags)
                .strongReference(true).register(registry);
    }

    /** Registers the measurements of a pipeline stage after the head: in a session or not, micro-batches run, compute time. */
    public void bind(StageService stage) {
        Gauge.builder("ringserve_pipeline_stage_in_session", stage, s -> s.inSession() ? 1 : 0)
                .description("1 while a head's session runs through this pipeline stage (the chain from here on is whole)").tags(tags)
                .strongReference(true).register(registry);
        FunctionCounter.builder("ringserve_pipeline_stage_micro_batches", stage, StageService::steps)
                .description("Micro-batches this pipeline stage has run").tags(tags).register(registry);
        FunctionCounter.builder("ringserve_pipeline_stage_compute_seconds", stage, s -> s.computeNanos() / 1e9)
                .description("Time this pipeline stage spent running micro-batches (its layers, encoding, sampling on the last stage)").tags(tags)
                .register(registry);
    }

    private void gauge(String name, String description, Engine engine, ToDoubleFunction<Engine> value) {
        Gauge.builder(name, engine, value).description(description).tags(tags).strongReference(true).register(registry);
    }

    /** From now on requests count; the warm-up request before it does not. */
    public void startRecording() {
        recording = true;
    }

    @Override
    public void firstToken(Duration timeToFirstToken) {
        if (recording) {
            this.timeToFirstToken.record(timeToFirstToken);
        }
    }

    @Override
    public void interTokenLatency(Duration sinceLastToken) {
        if (recording) {
            interTokenLatency.record(sinceLastToken);
            timePerOutputToken.record(sinceLastToken);
        }
    }

    @Override
    public void tokens(int promptTokensComputed, int generatedTokens) {
        if (recording) {
            promptTokens.increment(promptTokensComputed);
            generationTokens.increment(generatedTokens);
        }
    }

    @Override
    public void finished(EngineEvent.FinishReason reason, int promptTokens, int completionTokens) {
        if (recording) {
            success.get(reason).increment();
        }
    }

    @Override
    public void failed(EngineEvent.ErrorCode code) {
        if (recording) {
            errors.get(code).increment();
        }
    }

    /** A request refused by the service before it reached the engine. */
    public void refused(EngineEvent.ErrorCode code) {
        failed(code);
    }

    @Override
    public void preempted() {
        if (recording) {
            preemptions.increment();
        }
    }
}
