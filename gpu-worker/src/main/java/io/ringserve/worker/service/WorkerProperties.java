package io.ringserve.worker.service;

import jakarta.validation.constraints.Max;
import jakarta.validation.constraints.Min;
import jakarta.validation.constraints.NotNull;
import jakarta.validation.constraints.Pattern;
import java.nio.file.Path;
import java.time.Duration;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.ConstructorBinding;
import org.springframework.boot.context.properties.bind.DefaultValue;
import org.springframework.util.unit.DataSize;
import org.springframework.validation.annotation.Validated;

/**
 * The worker's configuration, under {@code ringserve.worker}. Invalid values stop the worker at startup with
 * a message naming the property.
 *
 * @param model          model checkpoint directory; unset: the demo model, written to the user cache on first use
 * @param modelId        model name reported to the gateway; unset: the model directory's name
 * @param backend        compute backend: auto (cuda where it can run, else cpu; see cuda.BackendSelector), cpu or cuda
 * @param grpcPort       port of the gRPC server (ringserve.v1.Worker and grpc.health.v1.Health); 0 picks a free port
 * @param kvCacheBytes   memory for the paged KV cache, e.g. 512MB or 8GB
 * @param kvBlockSize    token positions per KV cache block, 1..1024
 * @param maxRunning     most requests in the running batch
 * @param maxWaiting     most requests queued for KV cache room; more are refused with RESOURCE_EXHAUSTED
 * @param maxBatchTokens most tokens one engine step processes, decode tokens and prefill chunks together
 * @param drainTimeout   how long shutdown waits for in-flight requests before the engine closes
 * @param layers         decoder layers this worker holds, {@code start-end} with end exclusive (e.g. {@code 0-10}); unset: all.
 *                       A worker holding layer 0 but not the last is a pipeline head, one not holding layer 0 a later stage
 * @param nextStage      host:port of the next pipeline stage; set on every stage but the last, never on a whole model
 * @param stageTimeout   how long a pipeline step (or the handshake) may wait for the next stages before the chain counts as lost
 * @param microBatches   micro-batches a pipeline head splits each step into: 0 one per stage, 1 no splitting
 * @param stageDtype     how a pipeline head sends hidden states down the chain: auto (bfloat16 on the cuda backend,
 *                       float32 on the cpu), float32 (a chain computes bit for bit what one worker computes) or bfloat16
 * @param stepsInFlight  engine steps of disjoint sequences a pipeline head keeps in the chain at once: 1 one at a time;
 *                       the number of stages keeps every stage busy on a different step
 */
@ConfigurationProperties("ringserve.worker")
@Validated
public record WorkerProperties(
        Path model,
        @Pattern(regexp = "\\S(.*\\S)?", message = "must not be blank or have leading or trailing spaces") String modelId,
        @NotNull @DefaultValue("auto") Backend backend,
        @Min(0) @Max(65535) @DefaultValue("50051") int grpcPort,
        @NotNull @DefaultValue("512MB") DataSize kvCacheBytes,
        @Min(1) @Max(1024) @DefaultValue("16") int kvBlockSize,
        @Min(1) @DefaultValue("64") int maxRunning,
        @Min(0) @DefaultValue("1024") int maxWaiting,
        @Min(1) @DefaultValue("512") int maxBatchTokens,
        @NotNull @DefaultValue("30s") Duration drainTimeout,
        @Pattern(regexp = "\\s*\\d+\\s*-\\s*\\d+\\s*", message = "must be start-end with end exclusive, e.g. 0-10") String layers,
        @Pattern(regexp = "[^\\s:/]+:\\d{1,5}", message = "must be host:port of the next pipeline stage") String nextStage,
        @NotNull @DefaultValue("30s") Duration stageTimeout,
        @Min(0) @DefaultValue("0") int microBatches,
        @NotNull @DefaultValue("auto") StageDtype stageDtype,
        @Min(1) @Max(64) @DefaultValue("1") int stepsInFlight) {

    /** Encodings of the hidden states a pipeline head sends. */
    public enum StageDtype {
        /** bfloat16 when the head runs on CUDA, float32 on the CPU. */
        AUTO,
        /** 4 bytes a value: every stage receives exactly the residual stream a whole-model worker would hold there. */
        FLOAT32,
        /** 2 bytes a value: half the traffic; each stage's input is rounded to bf16. */
        BFLOAT16
    }

    /** Compute backends a worker can be asked for. */
    public enum Backend {
        /** CUDA where a usable GPU, the kernels and the CUDA forward pass are present; else the CPU. */
        AUTO,
        /** The float32 reference forward pass on the CPU. */
        CPU,
        /** CUDA kernels on an NVIDIA GPU; startup fails saying why when that cannot run here. */
        CUDA
    }

    @ConstructorBinding
    public WorkerProperties {
        if (kvCacheBytes != null && kvCacheBytes.toBytes() < 1) {
            throw new IllegalArgumentException("ringserve.worker.kv-cache-bytes (" + kvCacheBytes + ") must be > 0");
        }
        if (drainTimeout != null && drainTimeout.isNegative()) {
            throw new IllegalArgumentException("ringserve.worker.drain-timeout (" + drainTimeout + ") must be >= 0");
        }
        if (stageTimeout != null && (stageTimeout.isNegative() || stageTimeout.isZero())) {
            throw new IllegalArgumentException("ringserve.worker.stage-timeout (" + stageTimeout + ") must be > 0");
        }
    }

    /** The properties of a whole-model worker (no layer range, no next stage). */
    public WorkerProperties(Path model, String modelId, Backend backend, int grpcPort, DataSize kvCacheBytes, int kvBlockSize, int maxRunning,
                            int maxWaiting, int maxBatchTokens, Duration drainTimeout) {
        this(model, modelId, backend, grpcPort, kvCacheBytes, kvBlockSize, maxRunning, maxWaiting, maxBatchTokens, drainTimeout, null, null,
                Duration.ofSeconds(30), 0, StageDtype.AUTO, 1);
    }

    /** These properties for one pipeline stage: its layers and the next stage's address (null on the last). */
    public WorkerProperties withStage(String layers, String nextStage, Duration stageTimeout) {
        return new WorkerProperties(model, modelId, backend, grpcPort, kvCacheBytes, kvBlockSize, maxRunning, maxWaiting, maxBatchTokens, drainTimeout,
                layers, nextStage, stageTimeout, microBatches, stageDtype, stepsInFlight);
    }
}
