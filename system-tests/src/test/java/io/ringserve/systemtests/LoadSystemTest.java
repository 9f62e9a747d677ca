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
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Many concurrent streams through the shared cluster (two workers, a queue for 1024): random prompts and
 * lengths, random client disconnects, a group of identical greedy requests. Every request must end with
 * exactly one terminal outcome before its deadline, the identical requests must agree (and equal the worker
 * command line), and afterwards every worker must be idle with its KV cache empty.
 *
 * <p>Suite: 500 streams of 1..48 tokens. {@code -Dringserve.system.full=true}: 2000 streams of 1..256 tokens.
 */
@Timeout(600)
class LoadSystemTest {
    private static final String[] WORDS = {"ring", "model", "token", "stream", "worker", "gateway", "queue", "cache",
            "batch", "reason", "answer", "why", "how", "what", "is", "a", "the", "of", "and", "in"};
    private static final String SAME_QUESTION = "Tell me about rings under load.";
    private static final int SAME_TOKENS = 48;

    @Test
    void everyStreamEndsExactlyOnceAndTheWorkersEndIdle() throws Exception {
        Cluster cluster = Cluster.shared();
        int total = Cluster.FULL ? 2000 : 500;
        int maxLen = Cluster.FULL ? 256 : 48;
        int identical = 16;
        Duration deadline = Duration.ofSeconds(Cluster.FULL ? 300 : 120);
        Random random = new Random(42);
        record Spec(String body, int disconnectAfter, boolean same, boolean usage) {
        }
        List<Spec> specs = new ArrayList<>();
        for (int i = 0; i < total; i++) {
            if (i % (total / identical) == 0 && specs.stream().filter(Spec::same).count() < identical) {
                specs.add(new Spec(chat(SAME_QUESTION, SAME_TOKENS, true), -1, true, true));
                continue;
            }
            StringBuilder q = new StringBuilder();
            for (int w = 0, n = 1 + random.nextInt(12); w < n; w++) {
                q.append(WORDS[random.nextInt(WORDS.length)]).append(' ');
            }
            int len = 1 + random.nextInt(maxLen);
            boolean usage = random.nextBoolean();
            // one in five clients goes away after a few chunks
            int disconnect = random.nextInt(5) == 0 ? 1 + random.nextInt(4) : -1;
            specs.add(new Spec(random.nextBoolean() ? chat(q.toString().strip(), len, usage)
                    : completion(q.toString().strip(), len, usage), disconnect, false, usage));
        }
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(10)).build();
        CountDownLatch go = new CountDownLatch(1);
        List<Future<SseStream.Result>> futures = new ArrayList<>();
        long start;
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            for (Spec s : specs) {
                futures.add(pool.submit(() -> {
                    go.await();
                    boolean chatPath = s.body().contains("\"messages\"");
                    return SseStream.run(http, cluster.api(chatPath ? "/v1/chat/completions" : "/v1/completions"),
                            s.body(), deadline, s.disconnectAfter());
                }));
            }
            start = System.nanoTime();
            go.countDown();
            pool.shutdown();
            assertTrue(pool.awaitTermination(deadline.toSeconds() + 30, TimeUnit.SECONDS), "clients still running");
        }
        Duration wall = Duration.ofNanos(System.nanoTime() - start);
        Map<SseStream.Outcome, Integer> outcomes = new EnumMap<>(SseStream.Outcome.class);
        Map<Integer, Integer> httpErrors = new LinkedHashMap<>();
        List<String> problems = new ArrayList<>();
        List<String> sameTexts = new ArrayList<>();
        List<Duration> latencies = new ArrayList<>();
        List<Duration> firstTokens = new ArrayList<>();
        for (int i = 0; i < specs.size(); i++) {
            SseStream.Result r = futures.get(i).get();
            Spec s = specs.get(i);
            outcomes.merge(r.outcome(), 1, Integer::sum);
            switch (r.outcome()) {
                case FINISHED -> {
                    latencies.add(r.latency());
                    if (r.firstTokenNanos() > 0) {
                        firstTokens.add(Duration.ofNanos(r.firstTokenNanos() - r.startNanos()));
                    }
                    if (s.usage() && r.usageChunks() != 1) {
                        problems.add("#" + i + " usage chunks " + r.usageChunks());
                    }
                    if (s.same()) {
                        sameTexts.add(r.reasoning() + "\u0000" + r.content());
                    }
                }
                case HTTP_ERROR -> {
                    httpErrors.merge(r.status(), 1, Integer::sum);
                    if (r.status() != 429 && r.status() != 503) {
                        problems.add("#" + i + " HTTP " + r.status() + " " + r.detail());
                    }
                }
                case DISCONNECTED, ERROR_EVENT -> { }
                default -> problems.add("#" + i + " " + r.outcome() + " " + r.detail());
            }
            if (s.same() && r.outcome() != SseStream.Outcome.FINISHED) {
                problems.add("identical request #" + i + " did not finish: " + r.outcome() + " " + r.detail());
            }
        }
        int counted = outcomes.values().stream().mapToInt(Integer::intValue).sum();
        Duration idle = cluster.awaitWorkersIdle(Duration.ofSeconds(30));
        Map<String, Double> gw = cluster.gatewayMetrics();
        Map<String, Object> figures = new LinkedHashMap<>();
        figures.put("requests", total);
        figures.put("outcomes", outcomes);
        figures.put("httpErrors", httpErrors);
        figures.put("wall", Figures.ms(wall) + "ms");
        figures.put("finishedLatency", Figures.percentiles(latencies));
        figures.put("timeToFirstChunk", Figures.percentiles(firstTokens));
        figures.put("workersIdleAfter", Figures.ms(idle) + "ms");
        figures.put("gatewayQueueAfter", gw.get("ringserve_gateway_queue_size"));
        figures.put("identicalGreedy", sameTexts.size() + " finished, " + sameTexts.stream().distinct().count() + " distinct");
        Figures.record("load", figures);

        assertEquals(total, counted, "every request has exactly one outcome");
        assertTrue(problems.isEmpty(), () -> problems.size() + " problems: " + problems.subList(0, Math.min(20, problems.size())));
        assertEquals(identical, sameTexts.size());
        assertEquals(1, sameTexts.stream().distinct().count(), "identical greedy requests under load differ");
        String[] cli = Cluster.split(cluster.cliChat(SAME_QUESTION, SAME_TOKENS).text());
        assertEquals(cli[0] + "\u0000" + cli[1], sameTexts.getFirst(), "greedy output under load equals the worker command line");
        assertEquals(0.0, gw.getOrDefault("ringserve_gateway_queue_size", -1.0), "gateway queue empty afterwards");
        cluster.assertServes();
    }

    static String chat(String question, int maxTokens, boolean usage) {
        return "{\"model\":\"" + Cluster.MODEL_ID + "\",\"stream\":true,"
                + (usage ? "\"stream_options\":{\"include_usage\":true}," : "")
                + "\"max_tokens\":" + maxTokens + ",\"temperature\":0,\"messages\":[{\"role\":\"user\",\"content\":"
                + Json.quote(question) + "}]}";
    }

    static String completion(String prompt, int maxTokens, boolean usage) {
        return "{\"model\":\"" + Cluster.MODEL_ID + "\",\"stream\":true,"
                + (usage ? "\"stream_options\":{\"include_usage\":true}," : "")
                + "\"max_tokens\":" + maxTokens + ",\"temperature\":0.7,\"seed\":" + (maxTokens * 31) + ",\"prompt\":"
                + Json.quote(prompt) + "}";
    }
}
