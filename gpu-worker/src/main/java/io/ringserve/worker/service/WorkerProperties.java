package io.ringserve.worker.service;

import jakarta.validation.constraints.Max;
import jakarta.validation.constraints.Min;
import jakarta.validation.constraints.NotNull;
import jakarta.validation.constraints.Pattern;
import java.nio.file.Path;
import java.time.Duration;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;
import org.springframework.util.unit.DataSize;
import org.springframework.validation.annotation.Validated;

/**
 * The worker's configuration, under {@code ringserve.worker}. Invalid values stop the worker at startup with
 * a message naming the property.
 *
 * @param model          model checkpoint directory; unset: the demo model, written to the user cache on first use
 * @param modelId        model name reported to the gateway; unset: the model directory's name
 * @param backend        compute backend: auto (the best this build has: cpu), cpu or cuda
 * @param grpcPort       port of the gRPC server (ringserve.v1.Worker and grpc.health.v1.Health); 0 picks a free port
 * @param kvCacheBytes   memory for the paged KV cache, e.g. 512MB or 8GB
 * @param kvBlockSize    token positions per KV cache block, 1..1024
 * @param maxRunning     most requests in the running batch
 * @param maxWaiting     most requests queued for KV cache room; more are refused with RESOURCE_EXHAUSTED
 * @param maxBatchTokens most tokens one engine step processes, decode tokens and prefill chunks together
 * @param drainTimeout   how long shutdown waits for in-flight requests before the engine closes
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
        @NotNull @DefaultValue("30s") Duration drainTimeout) {

    /** Compute backends a worker can be asked for. */
    public enum Backend {
        /** The best backend this build has (cpu). */
        AUTO,
        /** The float32 reference forward pass on the CPU. */
        CPU,
        /** CUDA kernels on an NVIDIA GPU (not in this build). */
        CUDA
    }

    public WorkerProperties {
        if (kvCacheBytes != null && kvCacheBytes.toBytes() < 1) {
            throw new IllegalArgumentException("ringserve.worker.kv-cache-bytes (" + kvCacheBytes + ") must be > 0");
        }
        if (drainTimeout != null && drainTimeout.isNegative()) {
            throw new IllegalArgumentException("ringserve.worker.drain-timeout (" + drainTimeout + ") must be >= 0");
        }
    }
}
