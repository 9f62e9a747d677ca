package io.ringserve.systemtests;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * One gateway and N CPU workers on the tiny fixture model, as real processes on loopback ports chosen here.
 * Workers can be killed (SIGKILL), terminated (SIGTERM) and restarted on the same ports. {@link #shared()} is
 * one such cluster (two workers, a queue that holds 1024 requests) that the test classes which leave it as
 * they found it share; it is stopped when the test JVM exits.
 */
final class Cluster implements AutoCloseable {
    static final String MODEL_ID = "inclusionAI/Ring-mini-2.0";
    static final String API_KEY = "sk-system-test";
    static final Duration STARTUP = Duration.ofSeconds(120);

    /** Whether the full (long) versions of the load and fault scenarios run: {@code -Dringserve.system.full=true}. */
    static final boolean FULL = Boolean.getBoolean("ringserve.system.full");

    private static Cluster shared;

    final Processes processes;
    final Path workerJar;
    final Path gatewayJar;
    final Path model;
    final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(2)).build();
    private final List<Worker> workers = new ArrayList<>();
    private final List<String> workerArgs;
    private final List<List<String>> perWorkerArgs; // worker i's own arguments after the common ones; empty when none
    private final List<String> gatewayArgs;
    private final Map<String, CompletableFuture<OpenAiSdkSystemTest.Generated>> cli = new ConcurrentHashMap<>();
    private final int gatewayPort = Processes.freePort();
    private final int managementPort = Processes.freePort();
    private volatile Process gateway;
    private int gatewayStarts;

    /** One worker: fixed ports, the current process (replaced on restart). */
    static final class Worker {
        final int index;
        final int grpcPort = Processes.freePort();
        final int httpPort = Processes.freePort();
        volatile Process process;
        int starts;

        Worker(int index) {
            this.index = index;
        }

        String address() {
            return "127.0.0.1:" + grpcPort;
        }
    }

    private Cluster(String name, int workerCount, List<String> workerArgs, List<List<String>> perWorkerArgs, List<String> gatewayArgs) {
        workerJar = Processes.requiredFile("ringserve.worker.jar", "package gpu-worker first (./mvnw package)");
        gatewayJar = Processes.requiredFile("ringserve.gateway.jar", "package api-service first (./mvnw package)");
        model = Processes.requiredFile("ringserve.tiny.model", "the tiny fixture model is part of the repository");
        processes = new Processes(Path.of(System.getProperty("ringserve.logs.dir", "target/system-test-logs")).resolve(name));
        this.workerArgs = List.copyOf(workerArgs);
        this.perWorkerArgs = List.copyOf(perWorkerArgs);
        this.gatewayArgs = List.copyOf(gatewayArgs);
        for (int i = 0; i < workerCount; i++) {
            workers.add(new Worker(i));
        }
    }

    /** Starts the workers and the gateway and waits until all are ready. */
    static Cluster start(String name, int workerCount, List<String> workerArgs, List<String> gatewayArgs) {
        return start(name, workerCount, workerArgs, List.of(), gatewayArgs);
    }

    /** As {@link #start(String, int, List, List)}, worker i also getting {@code perWorkerArgs.get(i)} (when there is one). */
    static Cluster start(String name, int workerCount, List<String> workerArgs, List<List<String>> perWorkerArgs, List<String> gatewayArgs) {
        Cluster c = new Cluster(name, workerCount, workerArgs, perWorkerArgs, gatewayArgs);
        try {
            c.workers.forEach(c::launchWorker);
            c.startGateway();
            for (Worker w : c.workers) {
                c.awaitWorkerReady(w.index);
            }
            c.awaitGatewayReady(STARTUP);
            // every worker ready as seen by the gateway, not just one
            c.awaitGateway("all workers ready in the gateway", STARTUP, () -> c.gatewayReadyWorkers() == workerCount);
            return c;
        } catch (RuntimeException e) {
            c.close();
            throw e;
        }
    }

    /** Two workers, a gateway whose queue holds 1024 requests; shared by the classes that leave it idle and healthy. */
    static synchronized Cluster shared() {
        if (shared == null) {
            shared = start("shared", 2, List.of(), List.of("--ringserve.gateway.queue.size=1024"));
        }
        return shared;
    }

    int workerCount() {
        return workers.size();
    }

    Worker worker(int i) {
        return workers.get(i);
    }

    private void launchWorker(Worker w) {
        List<String> args = new ArrayList<>(List.of("serve", "--ringserve.worker.model=" + model,
                "--ringserve.worker.grpc-port=" + w.grpcPort, "--server.port=" + w.httpPort,
                "--server.address=127.0.0.1", "--ringserve.worker.kv-cache-bytes=64MB",
                "--ringserve.worker.drain-timeout=20s"));
        args.addAll(workerArgs);
        if (w.index < perWorkerArgs.size()) {
            args.addAll(perWorkerArgs.get(w.index));
        }
        w.process = processes.startJar("worker-" + w.index + (w.starts == 0 ? "" : "-restart-" + w.starts),
                Processes.WORKER_JVM_FLAGS, workerJar, args);
        w.starts++;
    }

    private String workerLogName(Worker w) {
        return "worker-" + w.index + (w.starts <= 1 ? "" : "-restart-" + (w.starts - 1));
    }

    /** Starts worker {@code i} again on its ports (after a kill or a stop) and waits until it is ready. */
    void restartWorker(int i) {
        Worker w = workers.get(i);
        if (w.process != null && w.process.isAlive()) {
            throw new IllegalStateException("worker " + i + " still runs");
        }
        launchWorker(w);
        awaitWorkerReady(i);
    }

    void awaitWorkerReady(int i) {
        Worker w = workers.get(i);
        Processes.awaitUp("worker " + i, w.process, URI.create("http://127.0.0.1:" + w.httpPort + "/actuator/health/readiness"),
                STARTUP, processes.log(workerLogName(w)));
    }

    /** SIGKILL: no drain, no goodbye; returns once the process is gone. */
    void killWorker(int i) {
        Process p = workers.get(i).process;
        p.destroyForcibly();
        try {
            p.waitFor(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** SIGTERM without waiting. */
    void terminateWorker(int i) {
        workers.get(i).process.destroy();
    }

    Process workerProcess(int i) {
        return workers.get(i).process;
    }

    void startGateway() {
        List<String> args = new ArrayList<>(List.of("--ringserve.gateway.model-dir=" + model,
                "--ringserve.gateway.model-id=" + MODEL_ID,
                "--ringserve.gateway.workers.addresses=" + String.join(",", workers.stream().map(Worker::address).toList()),
                "--ringserve.gateway.workers.poll-interval=200ms", "--ringserve.gateway.api-keys=" + API_KEY,
                "--server.port=" + gatewayPort, "--server.address=127.0.0.1",
                "--management.server.port=" + managementPort, "--management.server.address=127.0.0.1",
                // readiness lists each worker as ready or not
                "--management.endpoint.health.group.readiness.show-details=always"));
        args.addAll(gatewayArgs);
        gateway = processes.startJar("gateway" + (gatewayStarts == 0 ? "" : "-restart-" + gatewayStarts), List.of(), gatewayJar, args);
        gatewayStarts++;
    }

    Process gatewayProcess() {
        return gateway;
    }

    void awaitGatewayReady(Duration timeout) {
        Processes.awaitUp("gateway", gateway, management("/actuator/health/readiness"), timeout,
                processes.log("gateway" + (gatewayStarts <= 1 ? "" : "-restart-" + (gatewayStarts - 1))));
    }

    /** Polls {@code condition} every 50 ms until it holds; fails after {@code timeout}. Returns the time it took. */
    Duration awaitGateway(String what, Duration timeout, BooleanSupplier condition) {
        long start = System.nanoTime();
        long deadline = start + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            if (condition.getAsBoolean()) {
                return Duration.ofNanos(System.nanoTime() - start);
            }
            sleep(50);
        }
        throw new AssertionError("not within " + timeout + ": " + what + "; readiness: " + readinessBody());
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    URI api(String path) {
        return URI.create("http://127.0.0.1:" + gatewayPort + path);
    }

    String baseUrl() {
        return "http://127.0.0.1:" + gatewayPort + "/v1";
    }

    URI management(String path) {
        return URI.create("http://127.0.0.1:" + managementPort + path);
    }

    /** The gateway's readiness body, or the failure to get it. */
    String readinessBody() {
        try {
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(management("/actuator/health/readiness"))
                    .timeout(Duration.ofSeconds(2)).build(), HttpResponse.BodyHandlers.ofString());
            return r.statusCode() + " " + r.body();
        } catch (IOException e) {
            return "unreachable: " + e;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "interrupted";
        }
    }

    boolean gatewayReady() {
        return readinessBody().startsWith("200 ") && readinessBody().contains("\"status\":\"UP\"");
    }

    /** Workers the gateway's readiness lists as ready. */
    int gatewayReadyWorkers() {
        String body = readinessBody();
        int n = 0;
        for (int at = body.indexOf("\":\"ready\""); at >= 0; at = body.indexOf("\":\"ready\"", at + 1)) {
            n++;
        }
        return n;
    }

    /** Whether the gateway's readiness lists worker {@code i} as ready. */
    boolean gatewaySeesReady(int i) {
        return readinessBody().contains("\"" + workers.get(i).address() + "\":\"ready\"");
    }

    /** Worker {@code i}'s Prometheus samples, summed over labels, by metric name; empty when unreachable. */
    Map<String, Double> workerMetrics(int i) {
        return scrape(URI.create("http://127.0.0.1:" + workers.get(i).httpPort + "/actuator/prometheus"));
    }

    Map<String, Double> gatewayMetrics() {
        return scrape(management("/actuator/prometheus"));
    }

    /** The Prometheus samples at {@code uri}, summed over labels, by metric name; empty when unreachable. */
    Map<String, Double> scrape(URI uri) {
        Map<String, Double> m = new HashMap<>();
        try {
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(2)).build(),
                    HttpResponse.BodyHandlers.ofString());
            if (r.statusCode() != 200) {
                return m;
            }
            for (String line : r.body().split("\n")) {
                if (line.isBlank() || line.startsWith("#")) {
                    continue;
                }
                int brace = line.indexOf('{');
                int space = line.lastIndexOf(' ');
                String name = line.substring(0, brace >= 0 ? brace : line.indexOf(' '));
                m.merge(name, Double.parseDouble(line.substring(space + 1)), Double::sum);
            }
        } catch (IOException e) {
            // unreachable: empty
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return m;
    }

    /**
     * Waits until every live worker reports nothing running, nothing waiting and no KV cache in use; returns
     * the time it took.
     */
    Duration awaitWorkersIdle(Duration timeout) {
        return awaitGateway("workers idle (KV usage 0, nothing running or waiting)", timeout, () -> {
            for (Worker w : workers) {
                if (w.process == null || !w.process.isAlive()) {
                    continue;
                }
                Map<String, Double> m = workerMetrics(w.index);
                if (m.isEmpty() || m.getOrDefault("vllm:num_requests_running", 1.0) != 0
                        || m.getOrDefault("vllm:num_requests_waiting", 1.0) != 0
                        || m.getOrDefault("vllm:kv_cache_usage_perc", 1.0) != 0) {
                    return false;
                }
            }
            return true;
        });
    }

    /** POST JSON to the API with the key; the whole answer. */
    HttpResponse<String> post(String path, String json) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(api(path)).timeout(Duration.ofSeconds(60))
                .header("Authorization", "Bearer " + API_KEY).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(json)).build(), HttpResponse.BodyHandlers.ofString());
    }

    /** A normal short greedy request answers 200 with a finish reason. */
    void assertServes() throws IOException, InterruptedException {
        HttpResponse<String> r = post("/v1/chat/completions", "{\"model\":\"" + MODEL_ID
                + "\",\"max_tokens\":4,\"temperature\":0,\"messages\":[{\"role\":\"user\",\"content\":\"still there?\"}]}");
        if (r.statusCode() != 200 || !r.body().contains("\"finish_reason\"")) {
            throw new AssertionError("a normal request failed: " + r.statusCode() + " " + r.body());
        }
    }

    /**
     * What {@code gpu-worker.jar generate} prints for one user message, greedy, with {@code maxTokens}: the
     * reference every client's greedy output must equal. Runs once per (question, budget) and cluster.
     */
    OpenAiSdkSystemTest.Generated cliChat(String question, int maxTokens) {
        return cli.computeIfAbsent("chat|" + maxTokens + "|" + question, k -> CompletableFuture.supplyAsync(() -> {
            try {
                Path chat = Files.createTempFile(processes.logDir(), "chat", ".json");
                Files.writeString(chat, "{\"messages\":[{\"role\":\"user\",\"content\":" + Json.quote(question) + "}]}",
                        StandardCharsets.UTF_8);
                return OpenAiSdkSystemTest.Generated.parse(processes.run("cli-chat-" + Math.abs(k.hashCode()),
                        Processes.WORKER_JVM_FLAGS, workerJar, List.of("generate", "--model", model.toString(), "--chat",
                                chat.toString(), "--max-tokens", Integer.toString(maxTokens)), STARTUP));
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        })).join();
    }

    /** Same for a raw prompt ({@code /v1/completions}). */
    OpenAiSdkSystemTest.Generated cliPrompt(String prompt, int maxTokens) {
        return cli.computeIfAbsent("prompt|" + maxTokens + "|" + prompt, k -> CompletableFuture.supplyAsync(() ->
                OpenAiSdkSystemTest.Generated.parse(processes.run("cli-prompt-" + Math.abs(k.hashCode()),
                        Processes.WORKER_JVM_FLAGS, workerJar, List.of("generate", "--model", model.toString(), "--prompt",
                                prompt, "--max-tokens", Integer.toString(maxTokens)), STARTUP)))).join();
    }

    /** The CLI text split the way the gateway splits it: reasoning before {@code </think>}, then the answer. */
    static String[] split(String text) {
        int at = text.indexOf("</think>");
        if (at < 0) {
            return new String[] {text, ""};
        }
        return new String[] {text.substring(0, at), text.substring(at + "</think>".length()).replaceFirst("^[\r\n]+", "")};
    }

    @Override
    public void close() {
        processes.close();
    }
}
