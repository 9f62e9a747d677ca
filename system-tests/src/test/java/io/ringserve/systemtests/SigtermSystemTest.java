package io.ringserve.systemtests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.http.HttpClient;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;

/**
 * SIGTERM while streaming, first on a worker, then on the gateway: readiness goes down first, the streams in
 * flight complete, new requests go to the other worker (or, once the gateway itself stops, are refused).
 */
@Timeout(300)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class SigtermSystemTest {
    private static Cluster cluster;
    private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(2)).build();

    @BeforeAll
    static void start() {
        cluster = Cluster.start(SigtermSystemTest.class.getSimpleName(), 2, List.of(), List.of());
    }

    @AfterAll
    static void stop() {
        if (cluster != null) {
            cluster.close();
        }
    }

    private static List<Future<SseStream.Result>> launch(ExecutorService pool, int n, AtomicInteger streaming) {
        List<Future<SseStream.Result>> futures = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            String body = LoadSystemTest.chat("sigterm " + i, 450, true);
            futures.add(pool.submit(() -> SseStream.run(HTTP, cluster.api("/v1/chat/completions"), body,
                    Duration.ofSeconds(90), -1, c -> {
                        if (c == 1) {
                            streaming.incrementAndGet();
                        }
                    })));
        }
        return futures;
    }

    @Test
    @Order(1)
    void workerSigtermDrainsInFlightStreamsAndNewRequestsGoElsewhere() throws Exception {
        int n = Cluster.FULL ? 48 : 16;
        AtomicInteger streaming = new AtomicInteger();
        Map<SseStream.Outcome, Integer> inflight = new EnumMap<>(SseStream.Outcome.class);
        Map<SseStream.Outcome, Integer> later = new EnumMap<>(SseStream.Outcome.class);
        Duration notReady;
        long exitMs;
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<SseStream.Result>> first = launch(pool, n, streaming);
            cluster.awaitGateway("streams on worker 0", Duration.ofSeconds(30), () -> streaming.get() >= n / 2
                    && cluster.workerMetrics(0).getOrDefault("vllm:num_requests_running", 0.0) > 0);
            long t0 = System.nanoTime();
            cluster.terminateWorker(0);
            notReady = cluster.awaitGateway("the gateway sees worker 0 not ready", Duration.ofSeconds(10),
                    () -> !cluster.gatewaySeesReady(0));
            List<Future<SseStream.Result>> second = launch(pool, 8, new AtomicInteger());
            for (Future<SseStream.Result> f : first) {
                SseStream.Result r = f.get();
                inflight.merge(r.outcome(), 1, Integer::sum);
            }
            for (Future<SseStream.Result> f : second) {
                later.merge(f.get().outcome(), 1, Integer::sum);
            }
            Process p = cluster.workerProcess(0);
            assertTrue(p.waitFor(30, TimeUnit.SECONDS), "worker 0 did not exit after SIGTERM");
            exitMs = (System.nanoTime() - t0) / 1_000_000;
        }
        Map<String, Object> figures = new LinkedHashMap<>();
        figures.put("inFlight", inflight);
        figures.put("sentAfterSigterm", later);
        figures.put("gatewaySeesNotReady", Figures.ms(notReady) + "ms");
        figures.put("workerExitedAfter", exitMs + "ms");
        Figures.record("worker SIGTERM", figures);
        assertEquals(Map.of(SseStream.Outcome.FINISHED, n), inflight, "every in-flight stream completes");
        assertEquals(Map.of(SseStream.Outcome.FINISHED, 8), later, "new requests go to the other worker");
        cluster.restartWorker(0);
        cluster.awaitGateway("worker 0 back", Duration.ofSeconds(30), () -> cluster.gatewaySeesReady(0));
    }

    @Test
    @Order(2)
    void gatewaySigtermTurnsReadinessDownAndCompletesInFlightStreams() throws Exception {
        int n = Cluster.FULL ? 48 : 16;
        AtomicInteger streaming = new AtomicInteger();
        Map<SseStream.Outcome, Integer> inflight = new EnumMap<>(SseStream.Outcome.class);
        Map<String, Integer> later = new LinkedHashMap<>();
        List<String> details = new ArrayList<>();
        Duration notReady;
        long exitMs;
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<SseStream.Result>> first = launch(pool, n, streaming);
            cluster.awaitGateway("streams running", Duration.ofSeconds(30), () -> streaming.get() >= n / 2);
            long t0 = System.nanoTime();
            cluster.gatewayProcess().destroy();
            notReady = cluster.awaitGateway("gateway readiness not UP", Duration.ofSeconds(10), () -> !cluster.gatewayReady());
            // new requests while it drains: refused (503 or no connection), never accepted and dropped
            for (int i = 0; i < 4; i++) {
                SseStream.Result r = SseStream.run(HTTP, cluster.api("/v1/chat/completions"),
                        LoadSystemTest.chat("late", 4, false), Duration.ofSeconds(30), -1);
                String kind = r.outcome() == SseStream.Outcome.HTTP_ERROR ? "HTTP " + r.status() : r.outcome().name();
                later.merge(kind, 1, Integer::sum);
                details.add(kind + ": " + r.detail());
            }
            for (Future<SseStream.Result> f : first) {
                inflight.merge(f.get().outcome(), 1, Integer::sum);
            }
            assertTrue(cluster.gatewayProcess().waitFor(40, TimeUnit.SECONDS), "the gateway did not exit after SIGTERM");
            exitMs = (System.nanoTime() - t0) / 1_000_000;
        }
        Map<String, Object> figures = new LinkedHashMap<>();
        figures.put("inFlight", inflight);
        figures.put("sentWhileDraining", later);
        figures.put("readinessDownAfter", Figures.ms(notReady) + "ms");
        figures.put("gatewayExitedAfter", exitMs + "ms");
        Figures.record("gateway SIGTERM", figures);
        assertEquals(Map.of(SseStream.Outcome.FINISHED, n), inflight, "every in-flight stream completes");
        for (String k : later.keySet()) {
            assertTrue(k.equals("CONNECT_FAILED") || k.equals("HTTP 503") || k.equals("FINISHED"), "late request: " + later + " " + details);
        }
        cluster.startGateway();
        cluster.awaitGatewayReady(Cluster.STARTUP);
        cluster.assertServes();
    }
}
