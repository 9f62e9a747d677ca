package io.ringserve.worker.service;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.ringserve.model.sampling.SamplingParams;
import io.ringserve.model.sampling.StoppingParams;
import io.ringserve.protocol.v1.GenerateEvent;
import io.ringserve.protocol.v1.GenerateRequest;
import io.ringserve.protocol.v1.LoadRequest;
import io.ringserve.protocol.v1.LoadResponse;
import io.ringserve.protocol.v1.SamplingParameters;
import io.ringserve.protocol.v1.StoppingParameters;
import io.ringserve.protocol.v1.WorkerGrpc;
import io.ringserve.worker.engine.Generator;
import io.ringserve.worker.reference.Golden;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/**
 * Boots the whole worker on the tiny fixture model with random HTTP and gRPC ports; subclasses with the same
 * configuration share one application context. Gives a loopback gRPC channel and stream helpers.
 */
@SpringBootTest(classes = WorkerApplication.class, webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT, properties = {
    "ringserve.worker.grpc-port=0",
    "ringserve.worker.kv-cache-bytes=8MB",
})
abstract class WorkerTestSupport {
    static final Duration WAIT = Duration.ofSeconds(30);

    @DynamicPropertySource
    static void model(DynamicPropertyRegistry registry) {
        registry.add("ringserve.worker.model", () -> Golden.dir("tiny-ring-a").toString());
    }

    @Autowired
    WorkerEngine worker;
    @Autowired
    WorkerGrpcServer grpcServer;
    @Value("${local.server.port}")
    int httpPort;

    private final List<ManagedChannel> channels = new ArrayList<>();

    @AfterEach
    void closeChannels() throws InterruptedException {
        for (ManagedChannel c : channels) {
            c.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        channels.clear();
    }

    ManagedChannel channel() {
        ManagedChannel c = NettyChannelBuilder.forAddress("localhost", grpcServer.port()).usePlaintext().build();
        channels.add(c);
        return c;
    }

    WorkerGrpc.WorkerBlockingStub blocking() {
        return WorkerGrpc.newBlockingStub(channel()).withDeadlineAfter(WAIT.toSeconds(), TimeUnit.SECONDS);
    }

    LoadResponse load() {
        return blocking().load(LoadRequest.getDefaultInstance());
    }

    /** Every event of one Generate call, read to the end over the blocking stub. */
    List<GenerateEvent> generate(GenerateRequest request) {
        List<GenerateEvent> events = new ArrayList<>();
        blocking().generate(request).forEachRemaining(events::add);
        return events;
    }

    static GenerateRequest greedy(String id, int[] prompt, int maxNewTokens, boolean ignoreEos) {
        GenerateRequest.Builder b = GenerateRequest.newBuilder().setRequestId(id)
                .setSampling(SamplingParameters.getDefaultInstance())
                .setStopping(StoppingParameters.newBuilder().setMaxNewTokens(maxNewTokens).setIgnoreEos(ignoreEos));
        for (int t : prompt) {
            b.addPromptTokenIds(t);
        }
        return b.build();
    }

    static int[] prompt(long seed, int length) {
        return Golden.randomPrompt(seed, length);
    }

    /** What the single-sequence generator produces for this prompt alone: the reference for engine output. */
    int[] solo(int[] prompt, SamplingParams sampling, int maxNewTokens, boolean ignoreEos) {
        Set<Integer> eos = ignoreEos ? Set.of() : worker.model().eosTokenIds();
        return Generator.generate(worker.model().forward(), prompt, sampling, new StoppingParams(maxNewTokens, eos, ignoreEos), null).tokens();
    }

    /** Token ids of all TokensEvents, in order. */
    static int[] ids(List<GenerateEvent> events) {
        return events.stream().filter(GenerateEvent::hasTokens).flatMap(e -> e.getTokens().getTokenIdsList().stream())
                .mapToInt(Integer::intValue).toArray();
    }

    /** Asserts the stream shape: tokens only, then exactly one terminal event, last; returns it. */
    static GenerateEvent terminal(List<GenerateEvent> events) {
        assertTrue(!events.isEmpty(), "the stream has no event");
        for (int i = 0; i < events.size() - 1; i++) {
            assertTrue(events.get(i).hasTokens(), "event " + i + " of " + events.size() + " is not a TokensEvent: " + events.get(i));
        }
        GenerateEvent last = events.getLast();
        assertTrue(last.hasFinished() || last.hasError(), "the last event is neither finished nor error: " + last);
        return last;
    }

    static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long end = System.nanoTime() + WAIT.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) {
                fail("timed out after " + WAIT + " waiting until " + what);
            }
            Thread.sleep(5);
        }
    }

    HttpResponse<String> http(String path) throws Exception {
        try (HttpClient client = HttpClient.newHttpClient()) {
            return client.send(HttpRequest.newBuilder(URI.create("http://localhost:" + httpPort + path)).timeout(WAIT).build(),
                    HttpResponse.BodyHandlers.ofString());
        }
    }

    /** An asynchronous Generate call: collects events; {@code onFirstTokens} runs once, on the first TokensEvent. */
    static final class Call implements ClientResponseObserver<GenerateRequest, GenerateEvent> {
        final List<GenerateEvent> events = new CopyOnWriteArrayList<>();
        final CompletableFuture<Throwable> done = new CompletableFuture<>();
        private final Consumer<Call> onFirstTokens;
        volatile ClientCallStreamObserver<GenerateRequest> call;

        Call(Consumer<Call> onFirstTokens) {
            this.onFirstTokens = onFirstTokens;
        }

        static Call start(WorkerGrpc.WorkerStub stub, GenerateRequest request, Consumer<Call> onFirstTokens) {
            Call c = new Call(onFirstTokens);
            stub.generate(request, c);
            return c;
        }

        @Override
        public void beforeStart(ClientCallStreamObserver<GenerateRequest> requestStream) {
            call = requestStream;
        }

        @Override
        public void onNext(GenerateEvent value) {
            boolean first = value.hasTokens() && events.stream().noneMatch(GenerateEvent::hasTokens);
            events.add(value);
            if (first && onFirstTokens != null) {
                onFirstTokens.accept(this);
            }
        }

        @Override
        public void onError(Throwable t) {
            done.complete(t);
        }

        @Override
        public void onCompleted() {
            done.complete(null);
        }

        /** Waits for the end of the call; null when it completed normally, else the error. */
        Throwable await() throws Exception {
            return done.get(WAIT.toSeconds(), TimeUnit.SECONDS);
        }

        void cancel() {
            call.cancel("the client went away", null);
        }

        int tokenCount() {
            return ids(events).length;
        }
    }

    static void assertUsage(GenerateEvent finished, int prompt, int completion) {
        assertEquals(prompt, finished.getFinished().getUsage().getPromptTokens(), "usage.prompt_tokens");
        assertEquals(completion, finished.getFinished().getUsage().getCompletionTokens(), "usage.completion_tokens");
        assertEquals(0, finished.getFinished().getUsage().getCachedTokens(), "usage.cached_tokens");
    }
}
