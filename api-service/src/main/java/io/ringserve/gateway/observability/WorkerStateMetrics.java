package io.ringserve.gateway.observability;

import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.MultiGauge;
import io.micrometer.core.instrument.Tags;
import io.ringserve.gateway.worker.WorkerNode;
import io.ringserve.gateway.worker.WorkerPool;
import java.time.Duration;
import java.util.List;
import reactor.core.Disposable;
import reactor.core.publisher.Flux;

/**
 * One series per worker, labelled {@code worker="host:port"}: ready (0/1), requests this gateway has in flight
 * there, and the worker's KV cache usage. Rows follow the pool's membership (DNS discovery adds and removes
 * workers), refreshed at the pool's poll interval.
 */
public final class WorkerStateMetrics implements AutoCloseable {
    private final WorkerPool pool;
    private final MultiGauge ready;
    private final MultiGauge inFlight;
    private final MultiGauge kvUsage;
    private final Disposable refresh;

    public WorkerStateMetrics(WorkerPool pool, MeterRegistry registry, Duration interval) {
        this.pool = pool;
        this.ready = MultiGauge.builder("ringserve.gateway.worker.ready")
                .description("1 while the worker is ready for requests (healthy, informed, same model, circuit closed)").register(registry);
        this.inFlight = MultiGauge.builder("ringserve.gateway.worker.in.flight")
                .description("Requests this gateway has running on the worker").register(registry);
        this.kvUsage = MultiGauge.builder("ringserve.gateway.worker.kv.usage")
                .description("KV cache usage the worker last reported, 0 to 1").register(registry);
        refresh();
        // Flux<Long> ticks → row refresh (cheap: reads the pool's last polled state)
        this.refresh = Flux.interval(interval).subscribe(t -> refresh());
    }

    void refresh() {
        List<WorkerNode> nodes = List.copyOf(pool.nodes());
        ready.register(nodes.stream().map(n -> MultiGauge.Row.of(tags(n), n, WorkerNode::stateValue)).toList(), true);
        inFlight.register(nodes.stream().map(n -> MultiGauge.Row.of(tags(n), n, WorkerNode::inFlightCount)).toList(), true);
        kvUsage.register(nodes.stream().map(n -> MultiGauge.Row.of(tags(n), n, WorkerStateMetrics::kvUsage)).toList(), true);
    }

    private static Tags tags(WorkerNode n) {
        return Tags.of("worker", n.address());
    }

    private static double kvUsage(WorkerNode n) {
        var load = n.load();
        return load.getKvTotalBlocks() == 0 ? 0 : 1.0 - (double) load.getKvFreeBlocks() / load.getKvTotalBlocks();
    }

    @Override
    public void close() {
        refresh.dispose();
    }
}
