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
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A worker killed with SIGKILL while streams run on it: streams in progress continue on the other worker
 * through exact replay (greedy and seeded outputs equal an undisturbed run) or end with an error event;
 * requests sent right after the kill are retried elsewhere; the gateway's readiness and metrics show the
 * lost worker within seconds; the worker restarted on the same port rejoins and is routed to again.
 */
@Timeout(300)
class WorkerKillSystemTest {
    private static final int MAX_TOKENS = 400;
    private static Cluster cluster;

    @BeforeAll
    static void start() {
        cluster = Cluster.start(WorkerKillSystemTest.class.getSimpleName(), 2, List.of(), List.of());
    }

    @AfterAll
    static void stop() {
        if (cluster != null) {
            cluster.close();
        }
    }

    private static String greedy(int i) {
        return KillOutcomes.greedyChat("kill test " + (i % 3), MAX_TOKENS);
    }

    private static String seeded(int i) {
        return KillOutcomes.seededCompletion("seeded kill test", 100 + i % 3, MAX_TOKENS);
    }

    @Test
    void killedWorkerLosesNoStreamAndRejoinsAfterRestart() throws Exception {
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        Duration deadline = Duration.ofSeconds(90);
        int streams = Cluster.FULL ? 64 : 24;
        // undisturbed references, through the gateway on the healthy cluster
        Map<String, String> reference = new LinkedHashMap<>();
        for (int i = 0; i < 3; i++) {
            for (String body : List.of(greedy(i), seeded(i))) {
                SseStream.Result r = SseStream.run(http, cluster.api(KillOutcomes.path(body)), body, deadline, -1);
                assertEquals(SseStream.Outcome.FINISHED, r.outcome(), r.detail());
                reference.put(body, r.text());
            }
        }
        AtomicInteger streaming = new AtomicInteger();
        List<String> bodies = new ArrayList<>();
        List<Future<SseStream.Result>> futures = new ArrayList<>();
        List<Future<SseStream.Result>> after = new ArrayList<>();
        long killedAt;
        Duration readinessShowsIt;
        Duration metricsShowIt;
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < streams; i++) {
                String body = i % 2 == 0 ? greedy(i) : seeded(i);
                bodies.add(body);
                futures.add(pool.submit(() -> SseStream.run(http, cluster.api(KillOutcomes.path(body)), body, deadline, -1,
                        n -> {
                            if (n == 1) {
                                streaming.incrementAndGet();
                            }
                        })));
            }
            // kill once both workers run requests and half the streams have their first tokens
            cluster.awaitGateway("streams running on worker 0", Duration.ofSeconds(30), () -> streaming.get() >= streams / 2
                    && cluster.workerMetrics(0).getOrDefault("vllm:num_requests_running", 0.0) > 0);
            cluster.killWorker(0);
            killedAt = System.nanoTime();
            // requests sent right after the kill: some go to the dead worker before the gateway notices
            for (int i = 0; i < 8; i++) {
                String body = greedy(i);
                after.add(pool.submit(() -> SseStream.run(http, cluster.api(KillOutcomes.path(body)), body, deadline, -1)));
            }
            readinessShowsIt = cluster.awaitGateway("readiness shows worker 0 not ready", Duration.ofSeconds(10),
                    () -> !cluster.gatewaySeesReady(0) && cluster.gatewayReadyWorkers() == 1);
            metricsShowIt = cluster.awaitGateway("ringserve_gateway_workers_ready = 1", Duration.ofSeconds(10),
                    () -> cluster.gatewayMetrics().getOrDefault("ringserve_gateway_workers_ready", -1.0) == 1.0);
        }
        KillOutcomes k = KillOutcomes.of(futures, bodies, reference, killedAt);
        Map<SseStream.Outcome, Integer> outcomes = k.outcomes;
        List<String> problems = k.problems;
        int inProgressAtKill = k.inProgressAtKill;
        int continuedExactly = k.continuedExactly;
        Map<String, Integer> errors = k.errors;
        Map<SseStream.Outcome, Integer> afterOutcomes = new EnumMap<>(SseStream.Outcome.class);
        for (Future<SseStream.Result> f : after) {
            SseStream.Result r = f.get();
            afterOutcomes.merge(r.outcome(), 1, Integer::sum);
            if (r.outcome() != SseStream.Outcome.FINISHED) {
                problems.add("request after the kill: " + r.outcome() + " " + r.status() + " " + r.detail());
            }
        }
        Map<String, Double> gw = cluster.gatewayMetrics();
        double replays = gw.getOrDefault("ringserve_gateway_requests_rerouted_total", 0.0);

        // restart on the same port: the gateway sees it ready again and routes to it
        long restartAt = System.nanoTime();
        cluster.restartWorker(0);
        Duration workerUp = Duration.ofNanos(System.nanoTime() - restartAt);
        Duration rejoin = cluster.awaitGateway("the gateway sees the restarted worker ready", Duration.ofSeconds(60),
                () -> cluster.gatewaySeesReady(0));
        double served = 0;
        for (int round = 0; round < 20 && served == 0; round++) {
            try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
                for (int i = 0; i < 8; i++) {
                    String body = greedy(i);
                    pool.submit(() -> SseStream.run(http, cluster.api(KillOutcomes.path(body)), body, deadline, -1));
                }
            }
            served = cluster.workerMetrics(0).getOrDefault("vllm:request_success_total", 0.0);
        }
        Map<String, Object> figures = new LinkedHashMap<>();
        figures.put("streams", streams);
        figures.put("outcomes", outcomes);
        figures.put("inProgressAtKill", inProgressAtKill);
        figures.put("continuedExactly", continuedExactly);
        figures.put("errorEvents", errors);
        figures.put("requestsAfterKill", afterOutcomes);
        figures.put("reroutedTotal", replays);
        figures.put("readinessShowsLoss", Figures.ms(readinessShowsIt) + "ms");
        figures.put("metricsShowLoss", Figures.ms(metricsShowIt) + "ms");
        figures.put("restartedWorkerReady", Figures.ms(workerUp) + "ms");
        figures.put("gatewaySeesItReadyAfter", Figures.ms(rejoin) + "ms");
        figures.put("requestsServedByRestartedWorker", served);
        Figures.record("worker SIGKILL", figures);

        assertTrue(problems.isEmpty(), problems::toString);
        assertTrue(inProgressAtKill > 0, "no stream was in progress at the kill; the scenario did not happen");
        assertTrue(replays > 0, "nothing was retried or replayed");
        assertTrue(served > 0, "the restarted worker was never routed to");
        cluster.awaitWorkersIdle(Duration.ofSeconds(30));
    }
}
