package io.ringserve.systemtests;

import io.grpc.Server;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.ringserve.model.tokenizer.Tokenizer;
import io.ringserve.protocol.v1.FinishReason;
import io.ringserve.protocol.v1.FinishedEvent;
import io.ringserve.protocol.v1.GenerateEvent;
import io.ringserve.protocol.v1.GenerateRequest;
import io.ringserve.protocol.v1.InfoRequest;
import io.ringserve.protocol.v1.InfoResponse;
import io.ringserve.protocol.v1.LoadRequest;
import io.ringserve.protocol.v1.LoadResponse;
import io.ringserve.protocol.v1.TokensEvent;
import io.ringserve.protocol.v1.Usage;
import io.ringserve.protocol.v1.WorkerGrpc;
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * Gateway overhead: a fast scripted gRPC worker runs in this JVM (one token per event at a fixed interval,
 * no model), the packaged gateway runs as a process, and N concurrent clients stream chat completions
 * through it over HTTP. Because the worker and the clients share this JVM's clock, each token's send time
 * at the worker and arrival time at the client are compared directly. Not part of the test suite; run it
 * as a main class (see docs/BENCHMARKS.md, "Gateway overhead").
 *
 * <p>Options (system properties): {@code bench.concurrency} (default {@code 1,64,256}), {@code bench.tokens}
 * per request (128), {@code bench.interval-us} between tokens (1000), {@code bench.warmup-s} and
 * {@code bench.seconds} per concurrency level (3 and 10), {@code bench.global-warmup-s} before the first level
 * (10, at 32 streams), {@code ringserve.gateway.jar} and
 * {@code ringserve.tiny.model} (the repository's default paths).
 */
public final class GatewayBench {
    private static final String MODEL_ID = "bench-model";

    private GatewayBench() {
    }

    /** Worker-side send times (nanoTime) per request, keyed by the request's seed. */
    private static final Map<Long, long[]> SENT = new ConcurrentHashMap<>();

    /** The scripted worker: streams {@code script} one token per event at a fixed interval. */
    static final class ScriptedWorker extends WorkerGrpc.WorkerImplBase {
        private final int[] script;
        private final long intervalNanos;
        private final AtomicInteger running = new AtomicInteger();

        ScriptedWorker(int[] script, long intervalNanos) {
            this.script = script;
            this.intervalNanos = intervalNanos;
        }

        @Override
        public void info(InfoRequest request, StreamObserver<InfoResponse> out) {
            out.onNext(InfoResponse.newBuilder().setModelId(MODEL_ID).setArchitecture("BailingMoeV2ForCausalLM")
                    .setContextLength(65536).setMaxRunning(100_000).setMaxBatchTokens(100_000).setKvBlockSize(16)
                    .setKvTotalBlocks(1_000_000).setProtocolVersion(1).build());
            out.onCompleted();
        }

        @Override
        public void load(LoadRequest request, StreamObserver<LoadResponse> out) {
            out.onNext(LoadResponse.newBuilder().setRunning(running.get()).setKvFreeBlocks(1_000_000)
                    .setKvTotalBlocks(1_000_000).build());
            out.onCompleted();
        }

        @Override
        public void generate(GenerateRequest request, StreamObserver<GenerateEvent> out) {
            ServerCallStreamObserver<GenerateEvent> call = (ServerCallStreamObserver<GenerateEvent>) out;
            call.setOnCancelHandler(() -> { });
            int n = request.getStopping().getMaxNewTokens();
            long[] sent = new long[n];
            if (request.getSampling().hasSeed()) {
                SENT.put(request.getSampling().getSeed(), sent);
            }
            running.incrementAndGet();
            Thread.ofVirtual().start(() -> {
                try {
                    long start = System.nanoTime();
                    for (int i = 0; i < n; i++) {
                        long due = start + i * intervalNanos;
                        long now;
                        while ((now = System.nanoTime()) < due) {
                            LockSupport.parkNanos(due - now);
                        }
                        if (call.isCancelled()) {
                            return;
                        }
                        sent[i] = System.nanoTime();
                        call.onNext(GenerateEvent.newBuilder().setTokens(TokensEvent.newBuilder()
                                .addTokenIds(script[i % script.length])).build());
                    }
                    call.onNext(GenerateEvent.newBuilder().setFinished(FinishedEvent.newBuilder()
                            .setReason(FinishReason.LENGTH).setUsage(Usage.newBuilder()
                                    .setPromptTokens(request.getPromptTokenIdsCount()).setCompletionTokens(n))).build());
                    call.onCompleted();
                } finally {
                    running.decrementAndGet();
                }
            });
        }
    }

    /** A growable list of longs. */
    static final class Samples {
        private long[] v = new long[1024];
        private int n;

        synchronized void add(long x) {
            if (n == v.length) {
                v = Arrays.copyOf(v, n * 2);
            }
            v[n++] = x;
        }

        synchronized void addAll(Samples o) {
            for (int i = 0; i < o.n; i++) {
                add(o.v[i]);
            }
        }

        synchronized int size() {
            return n;
        }

        /** The q-quantile (nearest rank), in microseconds. */
        synchronized double quantileMicros(double q) {
            if (n == 0) {
                return Double.NaN;
            }
            long[] s = Arrays.copyOf(v, n);
            Arrays.sort(s);
            int idx = (int) Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1));
            return s[idx] / 1000.0;
        }
    }

    /** What one concurrency level measured. */
    record Result(int concurrency, int requests, long tokens, double seconds, Samples transit, Samples gapExcess,
                  Samples workerGap, Samples ttft, Samples toWorker, Samples firstTransit, int misaligned, int errors) {
    }

    public static void main(String[] args) throws Exception {
        int[] levels = Arrays.stream(System.getProperty("bench.concurrency", "1,64,256").split(","))
                .mapToInt(s -> Integer.parseInt(s.trim())).toArray();
        int tokens = Integer.getInteger("bench.tokens", 128);
        long intervalNanos = Long.getLong("bench.interval-us", 1000) * 1000;
        double warmup = Double.parseDouble(System.getProperty("bench.warmup-s", "3"));
        double seconds = Double.parseDouble(System.getProperty("bench.seconds", "10"));
        Path gatewayJar = Path.of(System.getProperty("ringserve.gateway.jar", "api-service/target/api-service.jar"));
        Path model = Path.of(System.getProperty("ringserve.tiny.model", "gpu-worker/src/test/resources/golden/tiny-ring-a"));
        Path logs = Path.of(System.getProperty("ringserve.logs.dir", "system-tests/target/bench-logs"));

        int[] script = asciiScript(Tokenizer.fromDirectory(model));
        ScriptedWorker worker = new ScriptedWorker(script, intervalNanos);
        HealthStatusManager health = new HealthStatusManager();
        health.setStatus("", HealthCheckResponse.ServingStatus.SERVING);
        Server server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0)).addService(worker)
                .addService(health.getHealthService()).build().start();

        try (Processes processes = new Processes(logs)) {
            int http = Processes.freePort();
            int management = Processes.freePort();
            Process gateway = processes.startJar("gateway", List.of(), gatewayJar, List.of(
                    "--ringserve.gateway.model-dir=" + model, "--ringserve.gateway.model-id=" + MODEL_ID,
                    "--ringserve.gateway.workers.addresses=127.0.0.1:" + server.getPort(),
                    "--ringserve.gateway.workers.poll-interval=200ms", "--ringserve.gateway.queue.size=4096",
                    "--server.port=" + http, "--server.address=127.0.0.1",
                    "--management.server.port=" + management, "--management.server.address=127.0.0.1"));
            Processes.awaitUp("gateway", gateway, URI.create("http://127.0.0.1:" + management + "/actuator/health/readiness"),
                    Duration.ofSeconds(90), processes.log("gateway"));
            URI url = URI.create("http://127.0.0.1:" + http + "/v1/chat/completions");
            HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                    .executor(java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor()).build();

            System.out.printf("gateway overhead: scripted worker, %d tokens per request, one token every %d us; "
                    + "%.0f s warm-up + %.0f s measured per level; %d CPU cores, %s%n", tokens, intervalNanos / 1000,
                    warmup, seconds, Runtime.getRuntime().availableProcessors(), Runtime.version());
            System.out.println("| concurrent streams | requests | tokens/s through the gateway | worker pace limit | "
                    + "per-token transit p50 / p99 | inter-chunk gap minus worker interval p50 / p99 | time to first chunk p50 / p99 | errors |");
            System.out.println("|---|---|---|---|---|---|---|---|");
            // JIT warm-up of gateway, worker and client before anything is measured
            level(client, url, 32, tokens, 0, Double.parseDouble(System.getProperty("bench.global-warmup-s", "10")));
            for (int c : levels) {
                Result r = level(client, url, c, tokens, warmup, seconds);
                System.out.printf("| %d | %d | %,.0f | %,.0f | %.0f / %.0f us | %.0f / %.0f us | %.1f / %.1f ms | %d%s |%n",
                        c, r.requests(), r.tokens() / r.seconds(), c * 1e9 / intervalNanos,
                        r.transit().quantileMicros(0.5), r.transit().quantileMicros(0.99),
                        r.gapExcess().quantileMicros(0.5), r.gapExcess().quantileMicros(0.99),
                        r.ttft().quantileMicros(0.5) / 1000, r.ttft().quantileMicros(0.99) / 1000,
                        r.errors(), r.misaligned() > 0 ? " (" + r.misaligned() + " misaligned)" : "");
                System.out.printf("  %d streams: worker's own inter-token interval p50 %.0f us, p99 %.0f us; time to first chunk ="
                                + " HTTP request to the worker's first token p50 %.1f ms, p99 %.1f ms + first token's transit p50 %.1f ms, p99 %.1f ms%n",
                        c, r.workerGap().quantileMicros(0.5), r.workerGap().quantileMicros(0.99),
                        r.toWorker().quantileMicros(0.5) / 1000, r.toWorker().quantileMicros(0.99) / 1000,
                        r.firstTransit().quantileMicros(0.5) / 1000, r.firstTransit().quantileMicros(0.99) / 1000);
            }
        } finally {
            server.shutdownNow();
        }
    }

    /** Script tokens that each decode on their own to printable ASCII without '<' (one SSE chunk per token). */
    static int[] asciiScript(Tokenizer tokenizer) {
        String text = "The gateway streams each token to the client as soon as the worker samples it, so the "
                + "time a token spends between the worker and the client is the overhead of the gateway itself. "
                + "Rings, groups and fields are the basic structures of abstract algebra; a ring has two operations.";
        List<Integer> ids = new ArrayList<>();
        for (int id : tokenizer.encode(text)) {
            if (tokenizer.isSpecial(id)) {
                continue;
            }
            String s = tokenizer.decode(new int[] {id}, true);
            if (!s.isEmpty() && s.chars().allMatch(ch -> ch >= 0x20 && ch < 0x7f && ch != '<')) {
                ids.add(id);
            }
        }
        if (ids.size() < 16) {
            throw new IllegalStateException("too few ASCII tokens for the script: " + ids.size());
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    private static Result level(HttpClient client, URI url, int concurrency, int tokens, double warmupS, double seconds)
            throws InterruptedException {
        long start = System.nanoTime();
        long measureFrom = start + (long) (warmupS * 1e9);
        long measureTo = measureFrom + (long) (seconds * 1e9);
        Samples transit = new Samples();
        Samples gapExcess = new Samples();
        Samples workerGap = new Samples();
        Samples ttft = new Samples();
        Samples toWorker = new Samples();
        Samples firstTransit = new Samples();
        AtomicLong tokenCount = new AtomicLong();
        AtomicInteger requests = new AtomicInteger();
        AtomicInteger misaligned = new AtomicInteger();
        AtomicInteger errors = new AtomicInteger();
        AtomicLong seeds = new AtomicLong(System.nanoTime() & 0x7fffffffL);
        CountDownLatch done = new CountDownLatch(concurrency);
        for (int t = 0; t < concurrency; t++) {
            Thread.ofVirtual().start(() -> {
                try {
                    while (System.nanoTime() < measureTo) {
                        long seed = seeds.incrementAndGet() * 7919;
                        try {
                            stream(client, url, seed, tokens, measureFrom, measureTo, transit, gapExcess, workerGap,
                                    ttft, toWorker, firstTransit, tokenCount, requests, misaligned);
                        } catch (Exception e) {
                            if (errors.incrementAndGet() <= 3) {
                                System.err.println("request failed: " + e);
                            }
                        } finally {
                            SENT.remove(seed);
                        }
                    }
                } finally {
                    done.countDown();
                }
            });
        }
        done.await();
        return new Result(concurrency, requests.get(), tokenCount.get(), seconds, transit, gapExcess, workerGap, ttft,
                toWorker, firstTransit, misaligned.get(), errors.get());
    }

    private static void stream(HttpClient client, URI url, long seed, int tokens, long from, long to, Samples transit,
                               Samples gapExcess, Samples workerGap, Samples ttft, Samples toWorker,
                               Samples firstTransit, AtomicLong tokenCount,
                               AtomicInteger requests, AtomicInteger misaligned) throws Exception {
        String body = "{\"model\":\"" + MODEL_ID + "\",\"stream\":true,\"temperature\":0,\"seed\":" + seed
                + ",\"max_tokens\":" + tokens + ",\"messages\":[{\"role\":\"user\",\"content\":\"Stream please.\"}]}";
        HttpRequest request = HttpRequest.newBuilder(url).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build();
        long sentAt = System.nanoTime();
        HttpResponse<InputStream> response = client.send(request, HttpResponse.BodyHandlers.ofInputStream());
        if (response.statusCode() != 200) {
            String err = new String(response.body().readAllBytes(), StandardCharsets.UTF_8);
            throw new IllegalStateException("HTTP " + response.statusCode() + ": " + err);
        }
        long[] received = new long[tokens];
        int n = 0;
        try (BufferedReader in = new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                long now = System.nanoTime();
                // read on to the end of the body (after [DONE]) so the connection goes back to the pool
                // one token per chunk: the script's tokens are whole ASCII strings
                if (line.startsWith("data: ") && (line.contains("\"reasoning_content\":\"") || line.contains("\"delta\":{\"content\":\""))) {
                    if (n < tokens) {
                        received[n] = now;
                    }
                    n++;
                }
            }
        }
        long[] sent = SENT.get(seed);
        if (n != tokens || sent == null) {
            misaligned.incrementAndGet();
            return;
        }
        if (received[0] >= from && received[0] < to) {
            ttft.add(received[0] - sentAt);
            toWorker.add(sent[0] - sentAt);
            firstTransit.add(received[0] - sent[0]);
            requests.incrementAndGet();
        }
        // collect per request, merge once: no lock per token
        Samples tr = new Samples();
        Samples ge = new Samples();
        Samples wgs = new Samples();
        for (int i = 0; i < n; i++) {
            if (received[i] < from || received[i] >= to) {
                continue;
            }
            tokenCount.incrementAndGet();
            tr.add(received[i] - sent[i]);
            if (i > 0) {
                long wg = sent[i] - sent[i - 1];
                wgs.add(wg);
                ge.add((received[i] - received[i - 1]) - wg);
            }
        }
        transit.addAll(tr);
        gapExcess.addAll(ge);
        workerGap.addAll(wgs);
    }
}
