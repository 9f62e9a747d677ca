package io.ringserve.systemtests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URI;
import java.net.http.HttpClient;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
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
 * A pipeline behind the gateway, as processes: worker 0 is the head of a chain holding layers 0-2 of the tiny model,
 * its stage (layers 2-3) a third worker process the gateway does not know; worker 1 holds the whole model. Through
 * the gateway both serve the same text. When the stage is killed with SIGKILL while streams run on the head, the head
 * fails them with UNAVAILABLE and the gateway replays them on worker 1, where they finish with the text of an
 * undisturbed run; the gateway's readiness shows the head not ready within seconds; when the stage comes back on its
 * address, the head rejoins by itself and is routed to again.
 */
@Timeout(300)
class PipelineSystemTest {
    private static final int MAX_TOKENS = 300;
    private static Processes stageProcesses;
    private static Process stage;
    private static final int STAGE_GRPC = Processes.freePort();
    private static final int STAGE_HTTP = Processes.freePort();
    private static int stageStarts;
    private static Cluster cluster;

    @BeforeAll
    static void start() {
        stageProcesses = new Processes(Path.of(System.getProperty("ringserve.logs.dir", "target/system-test-logs"))
                .resolve(PipelineSystemTest.class.getSimpleName() + "-stage"));
        startStage();
        cluster = Cluster.start(PipelineSystemTest.class.getSimpleName(), 2, List.of(),
                List.of(List.of("--ringserve.worker.layers=0-2", "--ringserve.worker.next-stage=127.0.0.1:" + STAGE_GRPC)), List.of());
    }

    /** The stage process on its fixed ports; returns once it is ready (its layers passed the self-test). */
    private static void startStage() {
        Path worker = Processes.requiredFile("ringserve.worker.jar", "package gpu-worker first (./mvnw package)");
        Path model = Processes.requiredFile("ringserve.tiny.model", "the tiny fixture model is part of the repository");
        String name = "stage" + (stageStarts == 0 ? "" : "-restart-" + stageStarts);
        stage = stageProcesses.startJar(name, Processes.WORKER_JVM_FLAGS, worker, List.of("serve", "--ringserve.worker.model=" + model,
                "--ringserve.worker.layers=2-3", "--ringserve.worker.grpc-port=" + STAGE_GRPC, "--server.port=" + STAGE_HTTP,
                "--server.address=127.0.0.1", "--ringserve.worker.kv-cache-bytes=64MB"));
        stageStarts++;
        Processes.awaitUp("stage", stage, URI.create("http://127.0.0.1:" + STAGE_HTTP + "/actuator/health/readiness"), Cluster.STARTUP,
                stageProcesses.log(name));
    }

    @AfterAll
    static void stop() {
        if (cluster != null) {
            cluster.close();
        }
        if (stageProcesses != null) {
            stageProcesses.close();
        }
    }

    private static String greedy(int i) {
        return KillOutcomes.greedyChat("pipeline test " + (i % 3), MAX_TOKENS);
    }

    private static String seeded(int i) {
        return KillOutcomes.seededCompletion("seeded pipeline test", 200 + i % 3, MAX_TOKENS);
    }

    @Test
    void aChainServesAsOneWorkerAndALostStageIsReplayedElsewhere() throws Exception {
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        Duration deadline = Duration.ofSeconds(90);
        // undisturbed references; then the same bodies concurrently, spread over the head and the whole-model worker
        Map<String, String> reference = new LinkedHashMap<>();
        List<String> problems = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            for (String body : List.of(greedy(i), seeded(i))) {
                SseStream.Result r = SseStream.run(http, cluster.api(KillOutcomes.path(body)), body, deadline, -1);
                assertEquals(SseStream.Outcome.FINISHED, r.outcome(), r.detail());
                reference.put(body, r.text());
            }
        }
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<String> bodies = new ArrayList<>();
            List<Future<SseStream.Result>> futures = new ArrayList<>();
            for (int i = 0; i < 12; i++) {
                String body = i % 2 == 0 ? greedy(i) : seeded(i);
                bodies.add(body);
                futures.add(pool.submit(() -> SseStream.run(http, cluster.api(KillOutcomes.path(body)), body, deadline, -1)));
            }
            for (int i = 0; i < futures.size(); i++) {
                SseStream.Result r = futures.get(i).get();
                if (r.outcome() != SseStream.Outcome.FINISHED || !r.text().equals(reference.get(bodies.get(i)))) {
                    problems.add("healthy chain #" + i + ": " + r.outcome() + " " + r.detail());
                }
            }
        }
        double servedByHead = cluster.workerMetrics(0).getOrDefault("vllm:request_success_total", 0.0);
        assertTrue(problems.isEmpty(), problems::toString);
        assertTrue(servedByHead > 0, "the gateway never routed to the pipeline head");
        Map<String, Double> stageMetrics = stageMetrics();
        assertTrue(stageMetrics.getOrDefault("ringserve_pipeline_stage_micro_batches_total", 0.0) > 0, stageMetrics.toString());

        // the stage dies while streams run on the head
        int streams = 16;
        AtomicInteger streaming = new AtomicInteger();
        List<String> bodies = new ArrayList<>();
        List<Future<SseStream.Result>> futures = new ArrayList<>();
        long killedAt;
        Duration readinessShowsIt;
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < streams; i++) {
                String body = i % 2 == 0 ? greedy(i) : seeded(i);
                bodies.add(body);
                futures.add(pool.submit(() -> SseStream.run(http, cluster.api(KillOutcomes.path(body)), body, deadline, -1, n -> {
                    if (n == 1) {
                        streaming.incrementAndGet();
                    }
                })));
            }
            cluster.awaitGateway("streams running on the head", Duration.ofSeconds(30), () -> streaming.get() >= streams / 2
                    && cluster.workerMetrics(0).getOrDefault("vllm:num_requests_running", 0.0) > 0);
            stage.destroyForcibly();
            stage.waitFor();
            killedAt = System.nanoTime();
            readinessShowsIt = cluster.awaitGateway("readiness shows the head not ready", Duration.ofSeconds(10), () -> !cluster.gatewaySeesReady(0));
        }
        KillOutcomes k = KillOutcomes.of(futures, bodies, reference, killedAt);
        problems.addAll(k.problems);
        double rerouted = cluster.gatewayMetrics().getOrDefault("ringserve_gateway_requests_rerouted_total", 0.0);
        // while the chain is broken, requests go to the whole-model worker only
        for (int i = 0; i < 4; i++) {
            SseStream.Result r = SseStream.run(http, cluster.api(KillOutcomes.path(greedy(i))), greedy(i), deadline, -1);
            if (r.outcome() != SseStream.Outcome.FINISHED || !r.text().equals(reference.get(greedy(i)))) {
                problems.add("request while the chain is broken: " + r.outcome() + " " + r.detail());
            }
        }

        // the stage comes back on its address: the head rejoins by itself and is routed to again
        long restartAt = System.nanoTime();
        startStage();
        Duration rejoin = cluster.awaitGateway("the gateway sees the head ready again", Duration.ofSeconds(60), () -> cluster.gatewaySeesReady(0));
        Duration healed = Duration.ofNanos(System.nanoTime() - restartAt);
        double before = cluster.workerMetrics(0).getOrDefault("vllm:request_success_total", 0.0);
        double after = before;
        for (int round = 0; round < 20 && after == before; round++) {
            try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
                for (int i = 0; i < 6; i++) {
                    String body = greedy(i);
                    pool.submit(() -> SseStream.run(http, cluster.api(KillOutcomes.path(body)), body, deadline, -1));
                }
            }
            after = cluster.workerMetrics(0).getOrDefault("vllm:request_success_total", 0.0);
        }

        Map<String, Object> figures = new LinkedHashMap<>();
        figures.put("streams", streams);
        figures.put("outcomes", k.outcomes);
        figures.put("inProgressAtKill", k.inProgressAtKill);
        figures.put("continuedExactly", k.continuedExactly);
        figures.put("errorEvents", k.errors);
        figures.put("reroutedTotal", rerouted);
        figures.put("readinessShowsLoss", Figures.ms(readinessShowsIt) + "ms");
        figures.put("stageRestartToHeadRoutedAgain", Figures.ms(healed) + "ms");
        figures.put("gatewaySeesHeadReadyAfterStageUp", Figures.ms(rejoin) + "ms");
        Figures.record("pipeline stage SIGKILL", figures);

        assertTrue(problems.isEmpty(), problems::toString);
        assertTrue(k.inProgressAtKill > 0, "no stream was in progress on the head at the kill; the scenario did not happen");
        assertTrue(rerouted > 0, "nothing was retried or replayed");
        assertTrue(after > before, "the healed head was never routed to");
        cluster.awaitWorkersIdle(Duration.ofSeconds(30));
    }

    private static Map<String, Double> stageMetrics() {
        return cluster.scrape(URI.create("http://127.0.0.1:" + STAGE_HTTP + "/actuator/prometheus"));
    }
}
