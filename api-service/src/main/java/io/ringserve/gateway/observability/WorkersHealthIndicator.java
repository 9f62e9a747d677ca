package io.ringserve.gateway.observability;

import io.ringserve.gateway.worker.WorkerNode;
import io.ringserve.gateway.worker.WorkerPool;
import java.util.LinkedHashMap;
import java.util.Map;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.HealthIndicator;

/** Readiness: UP while at least one worker is ready (healthy, not draining, circuit closed). */
public final class WorkersHealthIndicator implements HealthIndicator {
    private final WorkerPool pool;

    public WorkersHealthIndicator(WorkerPool pool) {
        this.pool = pool;
    }

    @Override
    public Health health() {
        Map<String, Object> workers = new LinkedHashMap<>();
        for (WorkerNode n : pool.nodes()) {
            workers.put(n.address(), n.ready() ? "ready" : "not ready");
        }
        return (pool.anyReady() ? Health.up() : Health.down()).withDetail("workers", workers).build();
    }
}
