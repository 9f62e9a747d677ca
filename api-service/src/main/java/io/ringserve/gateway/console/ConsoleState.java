package io.ringserve.gateway.console;

import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.ringserve.gateway.admission.AdmissionQueue;
import io.ringserve.gateway.config.GatewayProperties;
import io.ringserve.gateway.worker.WorkerNode;
import io.ringserve.gateway.worker.WorkerPool;
import io.ringserve.protocol.v1.InfoResponse;
import io.ringserve.protocol.v1.LoadResponse;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A read-only snapshot of what the gateway knows, for the operations console: every worker's last Info,
 * Load and health, its circuit breaker and last error, and the gateway's admission queue and counters.
 * Holds no prompt or output text.
 */
public final class ConsoleState {
    private final WorkerPool pool;
    private final AdmissionQueue queue;
    private final GatewayProperties properties;
    private final MeterRegistry registry;
    private final boolean apiAuth;
    private final Instant started = Instant.now();

    public ConsoleState(WorkerPool pool, AdmissionQueue queue, GatewayProperties properties, MeterRegistry registry,
                        boolean apiAuth) {
        this.pool = pool;
        this.queue = queue;
        this.properties = properties;
        this.registry = registry;
        this.apiAuth = apiAuth;
    }

    /** The snapshot as JSON-ready maps and lists. */
    public Map<String, Object> snapshot() {
        List<WorkerNode> nodes = new ArrayList<>(pool.nodes());
        nodes.sort(Comparator.comparing(WorkerNode::address));
        List<Map<String, Object>> workers = new ArrayList<>();
        int inFlight = 0;
        int ready = 0;
        for (WorkerNode n : nodes) {
            workers.add(worker(n));
            inFlight += n.inFlightCount();
            ready += n.ready() ? 1 : 0;
        }
        Map<String, Object> gateway = new LinkedHashMap<>();
        gateway.put("model", properties.modelId());
        gateway.put("apiAuth", apiAuth);
        gateway.put("startedAt", started.toString());
        gateway.put("workersKnown", nodes.size());
        gateway.put("workersReady", ready);
        gateway.put("inFlight", inFlight);
        gateway.put("queue", Map.of("size", queue.size(), "capacity", properties.queue().size(),
                "maxWaitMs", properties.queue().maxWait().toMillis()));
        gateway.put("admitted", count("ringserve.gateway.requests.admitted", null));
        gateway.put("rejected", count("ringserve.gateway.requests.rejected", "reason"));
        gateway.put("rerouted", count("ringserve.gateway.requests.rerouted", "kind"));
        gateway.put("tokens", count("ringserve.gateway.tokens", "direction"));
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("time", Instant.now().toString());
        s.put("gateway", gateway);
        s.put("workers", workers);
        return s;
    }

    private static Map<String, Object> worker(WorkerNode n) {
        Map<String, Object> w = new LinkedHashMap<>();
        w.put("address", n.address());
        w.put("ready", n.ready());
        w.put("serving", n.serving());
        InfoResponse info = n.info();
        if (info != null) {
            w.put("model", info.getModelId());
            w.put("architecture", info.getArchitecture());
            w.put("backend", switch (info.getBackend()) {
                case CPU -> "cpu";
                case CUDA -> "cuda";
                default -> "unknown";
            });
            w.put("device", info.getDeviceName());
            int total = info.getShape().getNumLayers();
            if (info.hasLayers() && info.getLayers().getEnd() > 0) {
                w.put("layers", Map.of("start", info.getLayers().getStart(), "end", info.getLayers().getEnd(),
                        "total", info.getLayers().getTotal() > 0 ? info.getLayers().getTotal() : total));
            } else if (total > 0) {
                w.put("layers", Map.of("start", 0, "end", total, "total", total));
            }
            w.put("contextLength", info.getContextLength());
            w.put("maxRunning", info.getMaxRunning());
        }
        LoadResponse load = n.load();
        w.put("running", load.getRunning());
        w.put("waiting", load.getWaiting());
        w.put("draining", load.getDraining());
        w.put("kvUsage", load.getKvUsage());
        w.put("kvFreeBlocks", load.getKvFreeBlocks());
        w.put("kvTotalBlocks", load.getKvTotalBlocks());
        w.put("inFlight", n.inFlightCount());
        w.put("freeCapacity", Math.max(0, n.freeCapacity()));
        CircuitBreaker.Metrics m = n.breaker().getMetrics();
        Map<String, Object> breaker = new LinkedHashMap<>();
        breaker.put("state", n.breaker().getState().name());
        breaker.put("failureRate", m.getFailureRate());
        breaker.put("failedCalls", m.getNumberOfFailedCalls());
        breaker.put("bufferedCalls", m.getNumberOfBufferedCalls());
        breaker.put("notPermittedCalls", m.getNumberOfNotPermittedCalls());
        w.put("breaker", breaker);
        w.put("incompatibility", n.incompatibility());
        WorkerNode.LastError e = n.lastError();
        w.put("lastError", e == null ? null : Map.of("message", e.message(), "at", e.at().toString()));
        return w;
    }

    /** A counter's total, or its totals per value of {@code tag} (with a "total" entry). */
    private Object count(String name, String tag) {
        if (tag == null) {
            return (long) registry.find(name).counters().stream().mapToDouble(Counter::count).sum();
        }
        Map<String, Long> by = new TreeMap<>();
        long total = 0;
        for (Counter c : registry.find(name).counters()) {
            String v = c.getId().getTag(tag);
            long n = (long) c.count();
            by.merge(v == null ? "other" : v, n, Long::sum);
            total += n;
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("total", total);
        out.put("by", by);
        return out;
    }
}
