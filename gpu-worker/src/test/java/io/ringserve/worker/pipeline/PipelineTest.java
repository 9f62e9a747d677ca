package io.ringserve.worker.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.ForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.ringserve.model.sampling.SamplingParams;
import io.ringserve.model.sampling.StoppingParams;
import io.ringserve.protocol.v1.StageRequest;
import io.ringserve.worker.engine.Engine;
import io.ringserve.worker.engine.EngineEvent;
import io.ringserve.worker.engine.EngineEvent.ErrorCode;
import io.ringserve.worker.engine.EngineEvent.Failed;
import io.ringserve.worker.engine.EngineEvent.Finished;
import io.ringserve.worker.engine.EngineListener;
import io.ringserve.worker.engine.EngineObserver;
import io.ringserve.worker.engine.EngineRequest;
import io.ringserve.worker.engine.EngineSettings;
import io.ringserve.worker.engine.ReferenceRunner;
import io.ringserve.worker.engine.ShardRunner;
import io.ringserve.worker.reference.Golden;
import io.ringserve.worker.reference.ModelWeights;
import io.ringserve.worker.reference.PagedKvCache;
import io.ringserve.worker.reference.ReferenceForward;
import io.ringserve.worker.weights.SafetensorsCheckpoint;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Two and three stages on loopback holding the tiny fixture model's layers behave, to the engine above them,
 * like one whole-model worker: the same tokens, logprobs and top logprobs bit for bit, under concurrency, with
 * preemptions and cancellations; a stage that dies or stalls fails the requests in flight with UNAVAILABLE within
 * the stage timeout, and the chain heals when the stage is back; stages refuse a chain that does not fit them.
 */
class PipelineTest {
    /** Default scheduling with an 8 MB KV budget (the tiny model needs no more). */
    static final EngineSettings SMALL = new EngineSettings(64, 1024, 512, 16, 8L << 20);
    static SafetensorsCheckpoint checkpoint;
    static ReferenceForward whole;

    @BeforeAll
    static void load() {
        checkpoint = SafetensorsCheckpoint.open(TestChain.MODEL);
        whole = new ReferenceForward(ModelWeights.load(io.ringserve.model.config.ModelConfig.load(TestChain.MODEL), checkpoint));
    }

    @AfterAll
    static void close() {
        checkpoint.close();
    }

    /** One request's events, in order, as text with every float's exact bits; completes on the terminal event. */
    static final class Recorder implements EngineListener {
        final List<String> events = new CopyOnWriteArrayList<>();
        final List<Integer> tokens = new CopyOnWriteArrayList<>();
        /** Per token: its logprob, then its top logprobs (none when not asked for). */
        final List<float[]> logprobs = new CopyOnWriteArrayList<>();
        final CompletableFuture<EngineEvent> end = new CompletableFuture<>();
        final int cancelAfter;
        final AtomicReference<Engine.RequestHandle> handle = new AtomicReference<>();

        Recorder(int cancelAfter) {
            this.cancelAfter = cancelAfter;
        }

        @Override
        public void onEvent(EngineEvent e) {
            switch (e) {
                case EngineEvent.Tokens t -> {
                    StringBuilder sb = new StringBuilder("tokens");
                    for (int i = 0; i < t.ids().length; i++) {
                        tokens.add(t.ids()[i]);
                        List<EngineEvent.TopLogprob> tops = t.top() == null ? List.of() : t.top().get(i);
                        float[] lp = new float[1 + tops.size()];
                        lp[0] = t.logprobs() == null ? Float.NaN : t.logprobs()[i];
                        for (int j = 0; j < tops.size(); j++) {
                            lp[1 + j] = tops.get(j).logprob();
                        }
                        logprobs.add(lp);
                        sb.append(' ').append(t.ids()[i]);
                        if (t.logprobs() != null) {
                            sb.append(" lp=").append(Integer.toHexString(Float.floatToRawIntBits(t.logprobs()[i])));
                        }
                        if (t.top() != null) {
                            for (EngineEvent.TopLogprob top : t.top().get(i)) {
                                sb.append(" [").append(top.tokenId()).append(':').append(Integer.toHexString(Float.floatToRawIntBits(top.logprob())))
                                        .append(']');
                            }
                        }
                    }
                    events.add(sb.toString());
                    if (cancelAfter > 0 && tokens.size() == cancelAfter) {
                        handle.get().cancel();
                    }
                }
                case Finished f -> {
                    events.add("finished " + f.reason() + " " + f.usage());
                    end.complete(f);
                }
                case Failed f -> {
                    events.add("failed " + f.code() + " " + f.message());
                    end.complete(f);
                }
            }
        }

        EngineEvent await() throws Exception {
            return end.get(60, TimeUnit.SECONDS);
        }

        int[] ids() {
            return tokens.stream().mapToInt(Integer::intValue).toArray();
        }
    }

    /** Twelve requests of mixed lengths: greedy, seeded sampling with penalties, logprobs, one replay, EOS on. */
    static List<EngineRequest> workload() {
        List<EngineRequest> out = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            int[] prompt = Golden.randomPrompt(300 + i, 3 + (i * 23) % 70);
            SamplingParams sampling = i % 3 == 1 ? new SamplingParams(0.9, 40, 0.95, 0.02, 1.1, 0.2, 0.1, 1000 + i)
                    : i % 3 == 2 ? new SamplingParams(1.2, 0, 1, 0, 1, 0, 0, 77 + i) : SamplingParams.greedy();
            int topLogprobs = switch (i % 4) {
                case 0 -> -1;
                case 1 -> 0;
                case 2 -> 5;
                default -> 20;
            };
            out.add(new EngineRequest("r" + i, prompt, sampling, new StoppingParams(18 + (i * 7) % 25, Set.of(), i != 5), topLogprobs, null));
        }
        // a replay: the last 4 prompt tokens are output delivered by an earlier attempt
        out.add(new EngineRequest("replay", Golden.randomPrompt(999, 30), new SamplingParams(0.8, 20, 0.9, 0, 1.3, 0.1, 0.4, 4242),
                new StoppingParams(15, Set.of(), true), 3, null, 4));
        return out;
    }

    static List<Recorder> run(Engine engine, List<EngineRequest> requests, int[] cancelAfter) throws Exception {
        List<Recorder> recorders = new ArrayList<>();
        for (int i = 0; i < requests.size(); i++) {
            Recorder r = new Recorder(cancelAfter[i]);
            recorders.add(r);
            r.handle.set(engine.submit(requests.get(i), r));
        }
        for (Recorder r : recorders) {
            r.await();
        }
        return recorders;
    }

    static EngineSettings settings(long kvBytesPerBlock, int blocks) {
        // few running slots and a small step budget: queueing, chunked prefill, mixed steps; 30 KV blocks of 8: preemptions
        return new EngineSettings(6, 64, 40, 8, kvBytesPerBlock * blocks);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"0-1,1-3", "0-2,2-3", "0-1,1-2,2-3"})
    void stagesGiveBitForBitTheOutputsOfOneWorker(String layout) throws Exception {
        List<EngineRequest> requests = workload();
        int[] noCancel = new int[requests.size()];
        List<Recorder> expected;
        try (Engine one = new Engine(new ReferenceRunner(whole), TestChain.EOS, settings(PagedKvCache.bytesPerBlock(whole.config(), 8), 30),
                EngineObserver.NONE).start()) {
            expected = run(one, requests, noCancel);
        }
        int[] cancelAfter = new int[requests.size()];
        cancelAfter[2] = 3;
        cancelAfter[7] = 1;
        cancelAfter[10] = 6;
        // the same number of KV blocks as the whole-model engine: the head's blocks count only its layers
        EngineSettings pipelined = settings(PagedKvCache.bytesPerBlock(whole.config(), TestChain.layout(layout, 3).getFirst(), 8), 30);
        try (TestChain chain = new TestChain(layout, pipelined, new TestChain.Options())) {
            assertEquals(30, chain.engine.kvTotalBlocks());
            List<Recorder> got = run(chain.engine, requests, cancelAfter);
            for (int i = 0; i < requests.size(); i++) {
                if (cancelAfter[i] > 0) {
                    Finished f = assertInstanceOf(Finished.class, got.get(i).end.get());
                    int[] prefix = got.get(i).ids();
                    assertTrue(prefix.length >= cancelAfter[i], "request " + i);
                    assertArrayEquals(Arrays.copyOf(expected.get(i).ids(), prefix.length), prefix, layout + " request " + i + " (cancelled, " + f.reason() + ")");
                    assertEquals(got.get(i).events.subList(0, prefix.length), expected.get(i).events.subList(0, prefix.length));
                } else {
                    assertEquals(expected.get(i).events, got.get(i).events, layout + " request " + i);
                }
            }
            assertTrue(chain.engine.awaitIdle(Duration.ofSeconds(10)));
            assertEquals(chain.engine.kvTotalBlocks(), chain.engine.load().freeBlocks(), "every KV block is back in the pool");
            PipelineStats stats = chain.head.stats();
            assertEquals(chain.layout.size(), stats.stages());
            assertTrue(stats.microBatches() > stats.steps(), "decode batches were split into micro-batches: " + stats);
        }
    }

    /**
     * With steps-in-flight above 1 the head keeps several engine steps of disjoint sequences in the chain at once (the stages work on
     * different steps): the outputs stay bit for bit one worker's, cancellations and preemptions included.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"0-1,1-3 steps-in-flight 2", "0-1,1-2,2-3 steps-in-flight 3", "0-2,2-3 steps-in-flight 2 micro-batches 1"})
    void severalStepsInTheChainGiveTheOutputsOfOneWorker(String setup) throws Exception {
        String[] words = setup.split(" ");
        String layout = words[0];
        int inFlight = Integer.parseInt(words[2]);
        int microBatches = words.length > 4 ? Integer.parseInt(words[4]) : 0;
        List<EngineRequest> requests = workload();
        List<Recorder> expected;
        try (Engine one = new Engine(new ReferenceRunner(whole), TestChain.EOS, settings(PagedKvCache.bytesPerBlock(whole.config(), 8), 30),
                EngineObserver.NONE).start()) {
            expected = run(one, requests, new int[requests.size()]);
        }
        int[] cancelAfter = new int[requests.size()];
        cancelAfter[3] = 2;
        cancelAfter[8] = 5;
        TestChain.Options options = new TestChain.Options();
        options.settings = new PipelineRunner.Settings(Duration.ofSeconds(10), microBatches, Duration.ofMillis(100),
                io.ringserve.protocol.v1.HiddenDtype.HIDDEN_FLOAT32, inFlight);
        EngineSettings pipelined = settings(PagedKvCache.bytesPerBlock(whole.config(), TestChain.layout(layout, 3).getFirst(), 8), 30);
        try (TestChain chain = new TestChain(layout, pipelined, options)) {
            List<Recorder> got = run(chain.engine, requests, cancelAfter);
            for (int i = 0; i < requests.size(); i++) {
                if (cancelAfter[i] > 0) {
                    int[] prefix = got.get(i).ids();
                    assertInstanceOf(Finished.class, got.get(i).end.get());
                    assertArrayEquals(Arrays.copyOf(expected.get(i).ids(), prefix.length), prefix, setup + " request " + i + " (cancelled)");
                } else {
                    assertEquals(expected.get(i).events, got.get(i).events, setup + " request " + i);
                }
            }
            assertTrue(chain.engine.awaitIdle(Duration.ofSeconds(10)));
            assertEquals(chain.engine.kvTotalBlocks(), chain.engine.load().freeBlocks(), "every KV block is back in the pool");
            assertEquals(inFlight, chain.head.mostStepsInFlight(), "steps overlapped in the chain");
        }
    }

    @ParameterizedTest(name = "steps in flight {0}")
    @ValueSource(ints = {1, 2})
    void aKilledStageFailsTheRequestsInFlightWithUnavailableAndTheChainHealsWhenItReturns(int stepsInFlight) throws Exception {
        TestChain.Options options = new TestChain.Options();
        options.settings = new PipelineRunner.Settings(Duration.ofSeconds(5), 0, Duration.ofMillis(100), io.ringserve.protocol.v1.HiddenDtype.HIDDEN_FLOAT32,
                stepsInFlight);
        List<Boolean> changes = new CopyOnWriteArrayList<>();
        try (TestChain chain = new TestChain("0-1,1-3", SMALL, options)) {
            chain.head.setChainListener((whole, reason) -> changes.add(whole));
            List<Recorder> inFlight = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                Recorder r = new Recorder(0);
                inFlight.add(r);
                chain.engine.submit(new EngineRequest("long" + i, Golden.randomPrompt(40 + i, 20), SamplingParams.greedy(),
                        new StoppingParams(400, Set.of(), true), -1, null), r);
            }
            for (Recorder r : inFlight) {
                awaitTokens(r, 2);
            }
            long t0 = System.nanoTime();
            chain.kill(1);
            for (Recorder r : inFlight) {
                Failed f = assertInstanceOf(Failed.class, r.await());
                assertEquals(ErrorCode.UNAVAILABLE, f.code(), f.message());
            }
            assertTrue(System.nanoTime() - t0 < Duration.ofSeconds(5).toNanos(), "failed within the stage timeout");
            assertFalse(chain.head.isWhole());
            assertTrue(changes.contains(false), "the chain listener heard the break");
            Recorder refused = new Recorder(0);
            chain.engine.submit(new EngineRequest("while-broken", Golden.randomPrompt(1, 5), SamplingParams.greedy(),
                    new StoppingParams(3, Set.of(), true), -1, null), refused);
            Failed f = assertInstanceOf(Failed.class, refused.await());
            assertEquals(ErrorCode.UNAVAILABLE, f.code());
            assertTrue(f.message().contains("not whole"), f.message());

            chain.restart(1);
            chain.awaitWhole(Duration.ofSeconds(10));
            long end = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (!Boolean.TRUE.equals(changes.getLast()) && System.nanoTime() < end) {
                Thread.sleep(5);
            }
            assertEquals(Boolean.TRUE, changes.getLast(), "the chain listener heard it whole again");
            int[] prompt = Golden.randomPrompt(41, 20);
            Recorder after = new Recorder(0);
            chain.engine.submit(new EngineRequest("after", prompt, SamplingParams.greedy(), new StoppingParams(12, Set.of(), true), -1, null), after);
            assertInstanceOf(Finished.class, after.await());
            assertArrayEquals(solo(prompt, 12), after.ids());
        }
    }

    @Test
    void aStalledStageFailsTheRequestsInFlightWithinTheStageTimeout() throws Exception {
        AtomicBoolean stalled = new AtomicBoolean();
        TestChain.Options options = new TestChain.Options();
        options.settings = new PipelineRunner.Settings(Duration.ofMillis(1500), 0, Duration.ofMillis(100));
        options.interceptors[2] = dropStepsWhile(stalled);
        try (TestChain chain = new TestChain("0-1,1-2,2-3", SMALL, options)) {
            Recorder r = new Recorder(0);
            chain.engine.submit(new EngineRequest("stalls", Golden.randomPrompt(7, 10), SamplingParams.greedy(),
                    new StoppingParams(400, Set.of(), true), -1, null), r);
            awaitTokens(r, 2);
            long t0 = System.nanoTime();
            stalled.set(true);
            Failed f = assertInstanceOf(Failed.class, r.await());
            long waited = System.nanoTime() - t0;
            assertEquals(ErrorCode.UNAVAILABLE, f.code());
            assertTrue(f.message().contains("stalled"), f.message());
            assertTrue(waited >= Duration.ofMillis(1400).toNanos() && waited < Duration.ofSeconds(10).toNanos(), waited / 1e6 + " ms");

            stalled.set(false);
            chain.awaitWhole(Duration.ofSeconds(10));
            int[] prompt = Golden.randomPrompt(8, 10);
            Recorder after = new Recorder(0);
            chain.engine.submit(new EngineRequest("after", prompt, SamplingParams.greedy(), new StoppingParams(10, Set.of(), true), -1, null), after);
            assertInstanceOf(Finished.class, after.await());
            assertArrayEquals(solo(prompt, 10), after.ids());
        }
    }

    /** Lets the hello through but swallows steps while {@code stalled}: a stage that stops answering. */
    static ServerInterceptor dropStepsWhile(AtomicBoolean stalled) {
        return new ServerInterceptor() {
            @Override
            public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
                return new ForwardingServerCallListener.SimpleForwardingServerCallListener<>(next.startCall(call, headers)) {
                    @Override
                    public void onMessage(Q message) {
                        if (stalled.get() && message instanceof StageRequest r && r.hasStep()) {
                            return;
                        }
                        super.onMessage(message);
                    }
                };
            }
        };
    }

    @Test
    void stagesRefuseAChainThatDoesNotFitThem() throws Exception {
        // a gap: the head ends at layer 1, the only other stage starts at 2
        TestChain.Options gap = new TestChain.Options();
        gap.awaitWhole = false;
        try (TestChain chain = new TestChain("0-1,2-3", SMALL, gap)) {
            String reason = chain.awaitBroken("refuse", Duration.ofSeconds(10));
            assertTrue(reason.contains("layer ranges are not contiguous"), reason);
            assertTrue(reason.contains("0-1 of 3") && reason.contains("2-3 of 3"), reason);
            Recorder r = new Recorder(0);
            chain.engine.submit(new EngineRequest("x", new int[] {1, 2}, SamplingParams.greedy(), new StoppingParams(2, Set.of(), true), -1, null), r);
            Failed f = assertInstanceOf(Failed.class, r.await());
            assertEquals(ErrorCode.UNAVAILABLE, f.code());
            assertTrue(f.message().contains("layer ranges are not contiguous"), f.message());
        }
        // another model's config.json on the last of three stages: the middle stage passes the refusal back
        TestChain.Options config = new TestChain.Options();
        config.awaitWhole = false;
        config.identity.addAll(java.util.Arrays.asList(null, null, id -> new StageIdentity("0".repeat(64), id.tokenizerSha256(), id.layers())));
        try (TestChain chain = new TestChain("0-1,1-2,2-3", SMALL, config)) {
            String reason = chain.awaitBroken("refuse", Duration.ofSeconds(10));
            assertTrue(reason.contains("config.json checksum mismatch") && reason.contains("0".repeat(64)), reason);
            assertTrue(reason.contains("stage 2-3 of 3 refuses"), reason);
        }
        // another tokenizer
        TestChain.Options tokenizer = new TestChain.Options();
        tokenizer.awaitWhole = false;
        tokenizer.identity.addAll(java.util.Arrays.asList(null, id -> new StageIdentity(id.configSha256(), "f".repeat(64), id.layers())));
        try (TestChain chain = new TestChain("0-2,2-3", SMALL, tokenizer)) {
            String reason = chain.awaitBroken("refuse", Duration.ofSeconds(10));
            assertTrue(reason.contains("tokenizer.json checksum mismatch"), reason);
        }
        // a stage whose KV budget cannot hold the head's blocks
        TestChain.Options small = new TestChain.Options();
        small.awaitWhole = false;
        small.stageKvBytes = 1024;
        try (TestChain chain = new TestChain("0-2,2-3", SMALL, small)) {
            String reason = chain.awaitBroken("refuse", Duration.ofSeconds(10));
            assertTrue(reason.contains("KV cache too small") && reason.contains("ringserve.worker.kv-cache-bytes"), reason);
        }
    }

    /**
     * A stage that cannot hold the session's KV cache (a GPU whose memory is taken) refuses the session with the reason,
     * and answers it only once its KV cache is held: the head is never whole, so no request is admitted to fail later.
     */
    @Test
    void aStageThatCannotHoldTheKvCacheRefusesBeforeTheChainIsWhole() throws Exception {
        TestChain.Options full = new TestChain.Options();
        full.awaitWhole = false;
        full.stageShard = (i, shard) -> new ShardRunner() {
            @Override
            public io.ringserve.model.config.ModelConfig config() {
                return shard.config();
            }

            @Override
            public io.ringserve.worker.reference.LayerRange layers() {
                return shard.layers();
            }

            @Override
            public long kvBytesPerBlock(int blockSize) {
                return shard.kvBytesPerBlock(blockSize);
            }

            @Override
            public int maxKvBlocks(int blockSize) {
                return shard.maxKvBlocks(blockSize);
            }

            @Override
            public void allocateKv(int blockSize, int blocks) {
                throw new IllegalArgumentException("the GPU has 0.12 GiB free for " + blocks + " KV blocks");
            }

            @Override
            public Output run(List<io.ringserve.worker.engine.StepRunner.StepEntry> batch, float[] hidden) {
                return shard.run(batch, hidden);
            }

            @Override
            public boolean selfTest() {
                return shard.selfTest();
            }
        };
        for (String layout : List.of("0-2,2-3", "0-1,1-2,2-3")) {
            try (TestChain chain = new TestChain(layout, SMALL, full)) {
                String reason = chain.awaitBroken("refuse", Duration.ofSeconds(10));
                assertTrue(reason.contains("refuses to join the chain: the GPU has 0.12 GiB free"), reason);
                Thread.sleep(300); // further attempts are refused the same way
                assertEquals(0, chain.head.stages(), layout + ": the chain was never whole");
                assertFalse(chain.head.isWhole());
            }
        }
    }

    @Test
    void aStageKnowsWhetherItIsLast() {
        var config = whole.config();
        var middle = new ReferenceForward(ModelWeights.load(config, checkpoint, new io.ringserve.worker.reference.LayerRange(1, 2, 3)));
        var last = new ReferenceForward(ModelWeights.load(config, checkpoint, new io.ringserve.worker.reference.LayerRange(1, 3, 3)));
        var first = new ReferenceForward(ModelWeights.load(config, checkpoint, new io.ringserve.worker.reference.LayerRange(0, 2, 3)));
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> new StageService(middle, StageIdentity.of(TestChain.MODEL, middle.layerRange()), 1 << 20, null, Duration.ofSeconds(1)));
        assertTrue(e.getMessage().contains("next stage is needed"), e.getMessage());
        e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> new StageService(last, StageIdentity.of(TestChain.MODEL, last.layerRange()), 1 << 20, "localhost:1", Duration.ofSeconds(1)));
        assertTrue(e.getMessage().contains("last stage"), e.getMessage());
        e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> new StageService(first, StageIdentity.of(TestChain.MODEL, first.layerRange()), 1 << 20, "localhost:1", Duration.ofSeconds(1)));
        assertTrue(e.getMessage().contains("pipeline head"), e.getMessage());
        try (StageService s = new StageService(middle, StageIdentity.of(TestChain.MODEL, middle.layerRange()), 1 << 20, "localhost:1",
                Duration.ofSeconds(1))) {
            assertTrue(s.selfTest());
        }
    }

    static void awaitTokens(Recorder r, int n) throws InterruptedException {
        long end = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (r.tokens.size() < n) {
            if (r.end.isDone() || System.nanoTime() > end) {
                throw new AssertionError("no " + n + " tokens: " + r.events);
            }
            Thread.sleep(2);
        }
    }

    static int[] solo(int[] prompt, int maxTokens) {
        return io.ringserve.worker.engine.Generator.generate(whole, prompt, SamplingParams.greedy(), new StoppingParams(maxTokens, Set.of(), true),
                null).tokens();
    }
}
