package io.ringserve.gateway.observability;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.time.Duration;

/** Gateway meters (Prometheus names {@code ringserve_gateway_*}); never records prompt or output text. */
public final class GatewayMetrics {
    private final MeterRegistry registry;
    private final Counter admitted;
    private final Timer firstToken;
    private final Timer latency;
    private final Counter tokensIn;
    private final Counter tokensOut;

    public GatewayMetrics(MeterRegistry registry) {
        this.registry = registry;
        admitted = registry.counter("ringserve.gateway.requests.admitted");
        firstToken = Timer.builder("ringserve.gateway.time.to.first.token").publishPercentileHistogram().register(registry);
        latency = Timer.builder("ringserve.gateway.request.latency").publishPercentileHistogram().register(registry);
        tokensIn = registry.counter("ringserve.gateway.tokens", "direction", "in");
        tokensOut = registry.counter("ringserve.gateway.tokens", "direction", "out");
    }

    public MeterRegistry registry() { return registry; }

    public void admitted() { admitted.increment(); }

    /** A request turned away; reason e.g. queue_full, queue_timeout, rate_limited, unauthorized. */
    public void rejected(String reason) {
        registry.counter("ringserve.gateway.requests.rejected", "reason", reason).increment();
    }

    /** A worker call retried or replayed; kind retry or replay. */
    public void rerouted(String kind) {
        registry.counter("ringserve.gateway.requests.rerouted", "kind", kind).increment();
    }

    public void firstToken(Duration d) { firstToken.record(d); }

    public void latency(Duration d) { latency.record(d); }

    public void tokens(int in, int out) {
        tokensIn.increment(in);
        tokensOut.increment(out);
    }
}
