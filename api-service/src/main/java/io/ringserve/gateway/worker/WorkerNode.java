package io.ringserve.gateway.worker;

import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthGrpc;
import io.ringserve.protocol.v1.InfoResponse;
import io.ringserve.protocol.v1.LoadResponse;
import io.ringserve.protocol.v1.WorkerGrpc;
import java.time.Instant;
import java.util.concurrent.atomic.AtomicInteger;

/** One worker as the gateway sees it: channel, last polled state, requests in flight, circuit breaker. */
public final class WorkerNode {
    private final String address;
    private final ManagedChannel channel;
    private final WorkerGrpc.WorkerStub stub;
    private final HealthGrpc.HealthStub health;
    private final CircuitBreaker breaker;
    private final AtomicInteger inFlight = new AtomicInteger();
    private volatile InfoResponse info;
    private volatile LoadResponse load = LoadResponse.getDefaultInstance();
    private volatile boolean serving;
    private volatile LastError lastError;
    private volatile String incompatibility;

    /**
     * The most recent failure seen for this worker (a failed poll or a call the circuit breaker counted).
     *
     * @param message what failed
     * @param at      when
     */
    public record LastError(String message, Instant at) {
    }

    WorkerNode(String address, ManagedChannel channel, CircuitBreaker breaker) {
        this.address = address;
        this.channel = channel;
        this.stub = WorkerGrpc.newStub(channel);
        this.health = HealthGrpc.newStub(channel);
        this.breaker = breaker;
        breaker.getEventPublisher().onError(e -> error(e.getThrowable() == null ? "call failed"
                : String.valueOf(e.getThrowable().getMessage())));
    }

    public String address() { return address; }

    public WorkerGrpc.WorkerStub stub() { return stub; }

    HealthGrpc.HealthStub health() { return health; }

    ManagedChannel channel() { return channel; }

    public CircuitBreaker breaker() { return breaker; }

    public InfoResponse info() { return info; }

    void info(InfoResponse info) { this.info = info; }

    void load(LoadResponse load) { this.load = load; }

    void serving(boolean serving) { this.serving = serving; }

    /** The last Load answer (all zero before the first). */
    public LoadResponse load() { return load; }

    /** Calls this gateway has running on the worker now. */
    public int inFlightCount() { return inFlight.get(); }

    /** The most recent failure, or null. */
    public LastError lastError() { return lastError; }

    void error(String message) { this.lastError = new LastError(message, Instant.now()); }

    /** Whether the last gRPC health check answered SERVING. */
    public boolean serving() { return serving; }

    /** Why this worker may not serve this gateway's model (a different tokenizer), or null. */
    public String incompatibility() { return incompatibility; }

    void incompatibility(String reason) { this.incompatibility = reason; }

    AtomicInteger inFlight() { return inFlight; }

    /** Healthy, informed, serving this gateway's model, not draining, circuit not open. */
    public boolean ready() {
        return info != null && incompatibility == null && serving && !load.getDraining() && breaker.getState() != CircuitBreaker.State.OPEN
                && breaker.getState() != CircuitBreaker.State.FORCED_OPEN;
    }

    /** Requests this worker can take now: its running limit less what it and this gateway know is running. */
    public int freeCapacity() {
        InfoResponse i = info;
        int max = i == null ? 0 : Math.max(1, i.getMaxRunning());
        LoadResponse l = load;
        return max - Math.max(inFlight.get(), l.getRunning() + l.getWaiting());
    }

    /** State for metrics: 0 down, 1 ready. */
    public int stateValue() {
        return ready() ? 1 : 0;
    }
}
