package io.ringserve.systemtests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.grpc.Server;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.ringserve.model.tokenizer.Tokenizer;
import io.ringserve.protocol.v1.Backend;
import io.ringserve.protocol.v1.ErrorCode;
import io.ringserve.protocol.v1.ErrorEvent;
import io.ringserve.protocol.v1.FinishReason;
import io.ringserve.protocol.v1.FinishedEvent;
import io.ringserve.protocol.v1.GenerateEvent;
import io.ringserve.protocol.v1.GenerateRequest;
import io.ringserve.protocol.v1.InfoRequest;
import io.ringserve.protocol.v1.InfoResponse;
import io.ringserve.protocol.v1.LoadRequest;
import io.ringserve.protocol.v1.LoadResponse;
import io.ringserve.protocol.v1.ModelShape;
import io.ringserve.protocol.v1.TokensEvent;
import io.ringserve.protocol.v1.Usage;
import io.ringserve.protocol.v1.WorkerGrpc;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;

/**
 * The gateway's console (playground at {@code /}, operations page at {@code /console}) in a real browser:
 * Debian's {@code chromium}, headless, driven by npm {@code playwright-core} from the node scripts in
 * {@code src/test/browser/} (one scenario per node process). Two packaged gateways run as processes: one in
 * front of the packaged CPU worker on the tiny fixture model (whose random weights only ever produce
 * reasoning), one in front of a scripted worker in this JVM that streams reasoning, {@code </think>} and a
 * Markdown answer at a pace slow enough to press Stop, and fails on request. Skipped when chromium or node
 * is missing; {@code npm ci} runs when {@code node_modules} is.
 *
 * <p>With {@code -Dringserve.console.screenshots=DIR} the screenshots of both pages are written to DIR
 * (the repository's {@code docs/} keeps the current ones).
 */
@Timeout(180)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ConsoleBrowserSystemTest {
    private static final String MODEL_ID = "inclusionAI/Ring-mini-2.0";
    private static final String API_KEY = "sk-console-test";
    private static final String ADMIN_KEY = "admin-console-test";
    private static final Duration STARTUP = Duration.ofSeconds(90);
    private static final Duration SCENARIO_TIMEOUT = Duration.ofSeconds(120);

    private static Path browserDir;
    private static Path screenshots;
    private static String chromium;
    private static Processes processes;
    private static Server scriptedServer;
    private static ScriptedWorker scripted;
    private static String realUrl;
    private static String scriptedUrl;

    @BeforeAll
    static void start() throws Exception {
        chromium = System.getProperty("ringserve.chromium", "/usr/bin/chromium");
        assumeTrue(Files.isExecutable(Path.of(chromium)), chromium + " is not installed (apt-get install chromium)");
        assumeTrue(runs(List.of("node", "--version")), "node is not installed");
        browserDir = Path.of(System.getProperty("ringserve.browser.dir", "src/test/browser")).toAbsolutePath();
        installPlaywright();

        Path workerJar = Processes.requiredFile("ringserve.worker.jar", "package gpu-worker first (./mvnw package)");
        Path gatewayJar = Processes.requiredFile("ringserve.gateway.jar", "package api-service first (./mvnw package)");
        Path model = Processes.requiredFile("ringserve.tiny.model", "the tiny fixture model is part of the repository");
        processes = new Processes(Path.of(System.getProperty("ringserve.logs.dir", "target/system-test-logs"))
                .resolve(ConsoleBrowserSystemTest.class.getSimpleName()));
        String shots = System.getProperty("ringserve.console.screenshots", "");
        screenshots = shots.isBlank() ? processes.logDir().resolve("screenshots") : Path.of(shots).toAbsolutePath();

        scripted = new ScriptedWorker(Tokenizer.fromDirectory(model));
        HealthStatusManager health = new HealthStatusManager();
        health.setStatus("", HealthCheckResponse.ServingStatus.SERVING);
        scriptedServer = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0)).addService(scripted)
                .addService(health.getHealthService()).build().start();

        int grpcPort = Processes.freePort();
        int workerHttp = Processes.freePort();
        Process worker = processes.startJar("worker", Processes.WORKER_JVM_FLAGS, workerJar, List.of("serve",
                "--ringserve.worker.model=" + model, "--ringserve.worker.grpc-port=" + grpcPort,
                "--server.port=" + workerHttp, "--server.address=127.0.0.1", "--ringserve.worker.kv-cache-bytes=64MB",
                "--ringserve.worker.drain-timeout=2s"));
        Gateway real = gateway(gatewayJar, model, "gateway-real", "127.0.0.1:" + grpcPort, List.of());
        // the scripted gateway: one attempt per request (a worker error reaches the client), one stream per key
        Gateway script = gateway(gatewayJar, model, "gateway-scripted", "127.0.0.1:" + scriptedServer.getPort(),
                List.of("--ringserve.gateway.max-attempts=1", "--ringserve.gateway.limits.per-key-concurrency=1"));
        Processes.awaitUp("worker", worker, URI.create("http://127.0.0.1:" + workerHttp + "/actuator/health/readiness"),
                STARTUP, processes.log("worker"));
        real.awaitUp();
        script.awaitUp();
        realUrl = real.url();
        scriptedUrl = script.url();
    }

    private record Gateway(String name, Process process, int http, int management) {
        String url() {
            return "http://127.0.0.1:" + http;
        }

        void awaitUp() {
            Processes.awaitUp(name, process, URI.create("http://127.0.0.1:" + management + "/actuator/health/readiness"),
                    STARTUP, processes.log(name));
        }
    }

    private static Gateway gateway(Path jar, Path model, String name, String worker, List<String> extra) {
        int http = Processes.freePort();
        int management = Processes.freePort();
        List<String> args = new ArrayList<>(List.of(
                "--ringserve.gateway.model-dir=" + model, "--ringserve.gateway.model-id=" + MODEL_ID,
                "--ringserve.gateway.workers.addresses=" + worker, "--ringserve.gateway.workers.poll-interval=200ms",
                "--ringserve.gateway.api-keys=" + API_KEY, "--ringserve.gateway.admin-keys=" + ADMIN_KEY,
                "--server.port=" + http, "--server.address=127.0.0.1",
                "--management.server.port=" + management, "--management.server.address=127.0.0.1"));
        args.addAll(extra);
        return new Gateway(name, processes.startJar(name, List.of(), jar, args), http, management);
    }

    @AfterAll
    static void stop() {
        if (processes != null) {
            processes.close();
        }
        if (scriptedServer != null) {
            scriptedServer.shutdownNow();
        }
    }

    @Test
    @Order(1)
    void reasoningOfTheCpuWorkerStreamsWithTheReplysFigures() throws Exception {
        scenario("reasoning-streams");
    }

    @Test
    @Order(2)
    void wrongApiKeyShowsAReadable401() throws Exception {
        scenario("unauthorized");
    }

    @Test
    @Order(3)
    void parameterOutOfRangeShowsA400NamingIt() throws Exception {
        scenario("bad-parameter");
    }

    @Test
    @Order(4)
    void operationsPageNeedsTheAdminKeyAndListsTheWorkerAsReady() throws Exception {
        scenario("operations");
    }

    @Test
    @Order(5)
    void markdownAnswerIsRenderedAfterTheReasoningAndNothingInItRuns() throws Exception {
        scenario("markdown-answer");
    }

    @Test
    @Order(6)
    void stopCancelsTheWorkerCallAndTheRunningCountReturnsToZero() throws Exception {
        int before = scripted.cancelled.get();
        scenario("stop-frees-the-worker");
        assertTrue(scripted.cancelled.get() > before, "the scripted worker saw its Generate call cancelled");
        assertEquals(0, scripted.running.get(), "nothing runs on the scripted worker");
    }

    @Test
    @Order(7)
    void errorEventMidStreamShowsAReadableMessage() throws Exception {
        scenario("mid-stream-error");
    }

    @Test
    @Order(8)
    void overThePerKeyLimitShows429WithRetryAfter() throws Exception {
        scenario("rate-limited");
    }

    /** Runs {@code node console-scenarios.mjs <name>}; fails with its output unless it exits 0. */
    private static void scenario(String name) throws Exception {
        Path log = processes.logDir().resolve("browser-" + name + ".log");
        ProcessBuilder pb = new ProcessBuilder("node", "console-scenarios.mjs", name).directory(browserDir.toFile())
                .redirectErrorStream(true).redirectOutput(log.toFile());
        Map<String, String> env = pb.environment();
        env.put("REAL_URL", realUrl);
        env.put("SCRIPTED_URL", scriptedUrl);
        env.put("API_KEY", API_KEY);
        env.put("ADMIN_KEY", ADMIN_KEY);
        env.put("CHROMIUM", chromium);
        env.put("SCREENSHOT_DIR", screenshots.toString());
        Process p = pb.start();
        boolean exited = p.waitFor(SCENARIO_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        if (!exited) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
        }
        String output = Files.readString(log, StandardCharsets.UTF_8);
        System.out.print(output);
        assertTrue(exited, "scenario " + name + " did not finish within " + SCENARIO_TIMEOUT + ":\n" + output);
        assertEquals(0, p.exitValue(), "scenario " + name + " failed:\n" + output);
    }

    /** {@code npm ci} when playwright-core is not installed yet; one build at a time per checkout. */
    private static void installPlaywright() throws Exception {
        if (Files.exists(browserDir.resolve("node_modules/playwright-core/package.json"))) {
            return;
        }
        assumeTrue(runs(List.of("npm", "--version")), "npm is not installed");
        Path lock = Path.of(System.getProperty("java.io.tmpdir"),
                "ring-serve-npm-ci-" + Integer.toHexString(browserDir.hashCode()) + ".lock");
        try (FileChannel channel = FileChannel.open(lock, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
             FileLock ignored = channel.lock()) {
            if (Files.exists(browserDir.resolve("node_modules/playwright-core/package.json"))) {
                return;
            }
            Path log = Files.createTempFile("npm-ci", ".log");
            Process p = new ProcessBuilder("npm", "ci", "--no-audit", "--no-fund").directory(browserDir.toFile())
                    .redirectErrorStream(true).redirectOutput(log.toFile()).start();
            boolean exited = p.waitFor(5, TimeUnit.MINUTES);
            if (!exited) {
                p.destroyForcibly();
            }
            String output = Files.readString(log, StandardCharsets.UTF_8);
            Files.deleteIfExists(log);
            assertTrue(exited && p.exitValue() == 0, "npm ci in " + browserDir + " failed:\n" + output);
        }
    }

    private static boolean runs(List<String> command) {
        try {
            Process p = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /**
     * A worker without a model: it streams a fixed reply, token by token, in the tiny model's tokenizer. The
     * user message picks the reply: "LONG" repeats reasoning until max tokens (slowly, to be stopped),
     * "FAIL" sends an error event after a few tokens, anything else reasons, closes the think block and
     * answers in Markdown.
     */
    static final class ScriptedWorker extends WorkerGrpc.WorkerImplBase {
        static final String REASONING = "The user asks what a ring is. I should give the definition, name a few "
                + "examples, show one line of code and point to further reading. ";
        static final String ANSWER = """
                ## Rings in brief

                A **ring** is a set with *addition* and *multiplication*, where `+` forms an abelian group.

                - the integers
                - polynomials over a field
                - square matrices

                ```java
                int sum = a + b; // <script>window.__xss = 1</script>
                ```

                Read more on [Wikipedia](https://en.wikipedia.org/wiki/Ring_(mathematics)). \
                Not a link: [click](javascript:window.__xss=1) and <img src=x onerror="window.__xss=1">.""";
        private static final int KV_TOTAL = 4096;

        final AtomicInteger running = new AtomicInteger();
        final AtomicInteger cancelled = new AtomicInteger();
        private final Tokenizer tokenizer;
        private final int[] reasoning;
        private final int[] reply;

        ScriptedWorker(Tokenizer tokenizer) {
            this.tokenizer = tokenizer;
            this.reasoning = tokenizer.encode(REASONING);
            this.reply = tokenizer.encode(REASONING.strip() + "\n</think>\n\n" + ANSWER);
        }

        @Override
        public void info(InfoRequest request, StreamObserver<InfoResponse> out) {
            out.onNext(InfoResponse.newBuilder().setModelId("scripted").setArchitecture("BailingMoeV2ForCausalLM")
                    .setShape(ModelShape.newBuilder().setNumLayers(3)).setBackend(Backend.CPU)
                    .setDeviceName("scripted test worker").setContextLength(65536).setMaxRunning(8)
                    .setMaxBatchTokens(512).setKvBlockSize(16).setKvTotalBlocks(KV_TOTAL).setProtocolVersion(1).build());
            out.onCompleted();
        }

        @Override
        public void load(LoadRequest request, StreamObserver<LoadResponse> out) {
            int r = running.get();
            int used = Math.min(KV_TOTAL, r * 300);
            out.onNext(LoadResponse.newBuilder().setRunning(r).setKvTotalBlocks(KV_TOTAL).setKvFreeBlocks(KV_TOTAL - used)
                    .setKvUsage((float) used / KV_TOTAL).build());
            out.onCompleted();
        }

        @Override
        public void generate(GenerateRequest request, StreamObserver<GenerateEvent> out) {
            ServerCallStreamObserver<GenerateEvent> call = (ServerCallStreamObserver<GenerateEvent>) out;
            call.setOnCancelHandler(cancelled::incrementAndGet);
            String prompt = tokenizer.decode(request.getPromptTokenIdsList().stream().mapToInt(Integer::intValue).toArray(), false);
            boolean loop = prompt.contains("LONG");
            boolean fail = prompt.contains("FAIL");
            int[] script = loop || fail ? reasoning : reply;
            int max = request.getStopping().getMaxNewTokens();
            int n = loop ? max : Math.min(max, fail ? 24 : script.length);
            long interval = TimeUnit.MILLISECONDS.toNanos(loop ? 25 : 8);
            running.incrementAndGet();
            Thread.ofVirtual().name("scripted-generate").start(() -> {
                try {
                    long next = System.nanoTime();
                    for (int i = 0; i < n; i++) {
                        next += interval;
                        long now;
                        while ((now = System.nanoTime()) < next) {
                            LockSupport.parkNanos(next - now);
                        }
                        if (call.isCancelled()) {
                            return;
                        }
                        call.onNext(GenerateEvent.newBuilder().setTokens(TokensEvent.newBuilder()
                                .addTokenIds(script[i % script.length])).build());
                    }
                    if (call.isCancelled()) {
                        return;
                    }
                    if (fail) {
                        call.onNext(GenerateEvent.newBuilder().setError(ErrorEvent.newBuilder()
                                .setCode(ErrorCode.INTERNAL).setMessage("scripted failure")).build());
                    } else {
                        call.onNext(GenerateEvent.newBuilder().setFinished(FinishedEvent.newBuilder()
                                .setReason(n < script.length || loop ? FinishReason.LENGTH : FinishReason.EOS)
                                .setUsage(Usage.newBuilder().setPromptTokens(request.getPromptTokenIdsCount())
                                        .setCompletionTokens(n))).build());
                    }
                    call.onCompleted();
                } finally {
                    running.decrementAndGet();
                }
            });
        }
    }
}
