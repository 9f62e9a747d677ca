package io.ringserve.worker.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.ringserve.model.config.BailingMoeConfig;
import io.ringserve.model.config.BailingMoeV2Config;
import io.ringserve.model.config.ModelConfig;
import io.ringserve.model.sampling.SamplingParams;
import io.ringserve.model.sampling.StoppingParams;
import io.ringserve.worker.engine.EngineEvent.ErrorCode;
import io.ringserve.worker.engine.EngineEvent.Failed;
import io.ringserve.worker.engine.EngineEvent.FinishReason;
import io.ringserve.worker.engine.EngineEvent.Finished;
import io.ringserve.worker.reference.Golden;
import io.ringserve.worker.reference.ModelWeights;
import io.ringserve.worker.reference.ReferenceForward;
import io.ringserve.worker.weights.SafetensorsCheckpoint;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The continuous-batching engine on the tiny fixture model. */
class EngineTest {
    static SafetensorsCheckpoint checkpoint;
    static ReferenceForward model;
    static final Set<Integer> EOS = Set.of(1537, 1540);

    @BeforeAll
    static void load() {
        BailingMoeV2Config config = BailingMoeV2Config.load(Golden.dir("tiny-ring-a").resolve("config.json"));
        checkpoint = SafetensorsCheckpoint.open(Golden.dir("tiny-ring-a"));
        model = new ReferenceForward(ModelWeights.load(config, checkpoint));
    }

    @AfterAll
    static void close() {
        checkpoint.close();
    }

    /** Collects one request's events and checks there is exactly one terminal event, last. */
    static class Collector implements EngineListener {
        final List<Integer> tokens = new CopyOnWriteArrayList<>();
        final List<EngineEvent> events = new CopyOnWriteArrayList<>();
        final CompletableFuture<EngineEvent> terminal = new CompletableFuture<>();

        @Override
        public void onEvent(EngineEvent e) {
            if (terminal.isDone()) {
                throw new AssertionError("event after the terminal event: " + e);
            }
            events.add(e);
            switch (e) {
                case EngineEvent.Tokens t -> {
                    for (int id : t.ids()) {
                        tokens.add(id);
                    }
                }
                case Finished f -> terminal.complete(f);
                case Failed f -> terminal.complete(f);
            }
        }

        EngineEvent await() throws Exception {
            return terminal.get(60, TimeUnit.SECONDS);
        }

        int[] ids() {
            return tokens.stream().mapToInt(Integer::intValue).toArray();
        }
    }

    static EngineRequest request(int[] prompt, SamplingParams sampling, int maxTokens) {
        return new EngineRequest("r", prompt, sampling, new StoppingParams(maxTokens, Set.of(), true), -1, null);
    }

    static int[] prompt(long seed, int length) {
        return Golden.randomPrompt(seed, length);
    }

    /** What one request produces alone, through the plain single-sequence generator. */
    static int[] solo(int[] prompt, SamplingParams sampling, int maxTokens) {
        return Generator.generate(model, prompt, sampling, new StoppingParams(maxTokens, Set.of(), true), null).tokens();
    }

    static Engine engine(EngineSettings settings, EngineObserver observer) {
        return new Engine(new ReferenceRunner(model), EOS, settings, observer).start();
    }

    @Test
    void concurrentGreedyAndSeededRequestsGiveTheirSoloOutputs() throws Exception {
        try (Engine engine = engine(new EngineSettings(16, 64, 48, 16, 64L << 20), EngineObserver.NONE)) {
            List<int[]> prompts = new ArrayList<>();
            List<SamplingParams> params = new ArrayList<>();
            for (int i = 0; i < 10; i++) {
                prompts.add(prompt(i, 5 + 17 * i % 90));
                params.add(i % 2 == 0 ? SamplingParams.greedy() : new SamplingParams(0.9, 40, 0.95, 0, 1.1, 0.2, 0.1, 1000 + i));
            }
            List<Collector> collectors = new ArrayList<>();
            for (int i = 0; i < prompts.size(); i++) {
                Collector c = new Collector();
                collectors.add(c);
                engine.submit(request(prompts.get(i), params.get(i), 20 + i), c);
            }
            for (int i = 0; i < prompts.size(); i++) {
                EngineEvent end = collectors.get(i).await();
                Finished f = assertInstanceOf(Finished.class, end);
                assertEquals(FinishReason.LENGTH, f.reason());
                assertEquals(prompts.get(i).length, f.usage().promptTokens());
                assertArrayEquals(solo(prompts.get(i), params.get(i), 20 + i), collectors.get(i).ids(), "request " + i);
            }
            assertTrue(engine.awaitIdle(Duration.ofSeconds(5)));
            assertEquals(engine.kvTotalBlocks(), engine.load().freeBlocks(), "every KV block is back in the pool");
        }
    }

    @Test
    void aReplayWithTheDeliveredTokensContinuesExactlyAsTheFirstAttempt() throws Exception {
        try (Engine engine = engine(EngineSettings.defaults(), EngineObserver.NONE)) {
            int[] p = prompt(77, 24);
            // sampled with penalties: both the RNG position and the penalty counts must carry over
            SamplingParams sampled = new SamplingParams(1.0, 0, 0.9, 0, 1.2, 0.5, 0.3, 4242);
            int[] whole = solo(p, sampled, 30);
            int delivered = 11;
            int[] replayPrompt = java.util.Arrays.copyOf(p, p.length + delivered);
            System.arraycopy(whole, 0, replayPrompt, p.length, delivered);
            Collector c = new Collector();
            engine.submit(new EngineRequest("replay", replayPrompt, sampled, new StoppingParams(30 - delivered, Set.of(), true), -1, null,
                    delivered), c);
            Finished f = assertInstanceOf(Finished.class, c.await());
            assertArrayEquals(java.util.Arrays.copyOfRange(whole, delivered, 30), c.ids());
            assertEquals(p.length, f.usage().promptTokens(), "replayed tokens are not prompt");

            Collector bad = new Collector();
            engine.submit(new EngineRequest("bad", p, sampled, new StoppingParams(5, Set.of(), true), -1, null, p.length), bad);
            assertEquals("replayed_tokens", assertInstanceOf(Failed.class, bad.await()).param());
        }
    }

    @Test
    void preemptionUnderATinyKvBudgetKeepsOutputsExact() throws Exception {
        AtomicInteger preemptions = new AtomicInteger();
        EngineObserver counting = new EngineObserver() {
            @Override
            public void preempted() {
                preemptions.incrementAndGet();
            }
        };
        // 64 + 40 positions per request need 7 blocks of 16; the pool holds 12 blocks: two requests at most
        ModelConfig c = model.config();
        long perBlock = 2L * c.numHiddenLayers() * c.kvDim() * Float.BYTES * 16;
        try (Engine engine = engine(new EngineSettings(8, 64, 256, 16, 12 * perBlock), counting)) {
            assertEquals(12, engine.kvTotalBlocks());
            List<Collector> collectors = new ArrayList<>();
            List<int[]> prompts = new ArrayList<>();
            for (int i = 0; i < 6; i++) {
                prompts.add(prompt(50 + i, 64));
                Collector col = new Collector();
                collectors.add(col);
                engine.submit(request(prompts.get(i), SamplingParams.greedy(), 40), col);
            }
            for (int i = 0; i < 6; i++) {
                assertInstanceOf(Finished.class, collectors.get(i).await());
                assertArrayEquals(solo(prompts.get(i), SamplingParams.greedy(), 40), collectors.get(i).ids(), "request " + i);
            }
            assertTrue(preemptions.get() > 0, "the budget forced preemptions");
            assertTrue(engine.awaitIdle(Duration.ofSeconds(5)));
            assertEquals(12, engine.load().freeBlocks());
        }
    }

    @Test
    void cancellingARequestEndsItAndFreesItsBlocks() throws Exception {
        try (Engine engine = engine(new EngineSettings(8, 64, 64, 16, 64L << 20), EngineObserver.NONE)) {
            CountDownLatch firstToken = new CountDownLatch(1);
            Collector c = new Collector() {
                @Override
                public void onEvent(EngineEvent e) {
                    super.onEvent(e);
                    firstToken.countDown();
                }
            };
            Engine.RequestHandle handle = engine.submit(request(prompt(9, 30), SamplingParams.greedy(), 400), c);
            assertTrue(firstToken.await(30, TimeUnit.SECONDS));
            assertTrue(engine.load().freeBlocks() < engine.kvTotalBlocks(), "the running request holds blocks");
            handle.cancel();
            Finished f = assertInstanceOf(Finished.class, c.await());
            assertEquals(FinishReason.CANCELLED, f.reason());
            assertTrue(f.usage().completionTokens() < 400);
            assertTrue(engine.awaitIdle(Duration.ofSeconds(5)));
            assertEquals(engine.kvTotalBlocks(), engine.load().freeBlocks());
        }
    }

    @Test
    void badRequestsAreRefusedWithoutDisturbingOtherStreams() throws Exception {
        try (Engine engine = engine(new EngineSettings(8, 64, 64, 16, 64L << 20), EngineObserver.NONE)) {
            int[] good = prompt(3, 20);
            Collector running = new Collector();
            engine.submit(request(good, SamplingParams.greedy(), 30), running);
            record Bad(EngineRequest request, String param) {
            }
            List<Bad> bad = List.of(
                    new Bad(request(new int[0], SamplingParams.greedy(), 5), "prompt_token_ids"),
                    new Bad(request(new int[] {1, 99_999}, SamplingParams.greedy(), 5), "prompt_token_ids"),
                    new Bad(request(prompt(4, 500), SamplingParams.greedy(), 100), "max_new_tokens"),
                    new Bad(request(good, new SamplingParams(1, 1_000_000, 1, 0, 1, 0, 0, 1), 5), "top_k"),
                    new Bad(new EngineRequest("r", good, SamplingParams.greedy(), new StoppingParams(5, Set.of(), false), 50, null), "top_logprobs"));
            for (Bad b : bad) {
                Collector c = new Collector();
                engine.submit(b.request(), c);
                Failed f = assertInstanceOf(Failed.class, c.await());
                assertEquals(ErrorCode.INVALID_REQUEST, f.code(), f.message());
                assertEquals(b.param(), f.param());
            }
            assertInstanceOf(Finished.class, running.await());
            assertArrayEquals(solo(good, SamplingParams.greedy(), 30), running.ids());
        }
    }

    @Test
    void aListenerThatThrowsOnlyLosesItsOwnRequest() throws Exception {
        try (Engine engine = engine(new EngineSettings(8, 64, 64, 16, 64L << 20), EngineObserver.NONE)) {
            int[] p = prompt(11, 12);
            Collector healthy = new Collector();
            engine.submit(request(p, SamplingParams.greedy(), 25), healthy);
            engine.submit(request(prompt(12, 12), SamplingParams.greedy(), 25), e -> {
                throw new IllegalStateException("client went away");
            });
            assertInstanceOf(Finished.class, healthy.await());
            assertArrayEquals(solo(p, SamplingParams.greedy(), 25), healthy.ids());
            assertTrue(engine.awaitIdle(Duration.ofSeconds(5)));
            assertEquals(engine.kvTotalBlocks(), engine.load().freeBlocks());
            assertTrue(engine.isAlive());
        }
    }

    @Test
    void aV1ModelIsServedByTheSameEngine() throws Exception {
        try (LocalModel lite = LocalModel.open(Golden.dir("tiny-ring-lite-a"));
             Engine engine = new Engine(new ReferenceRunner(lite.forward()), lite.eosTokenIds(), EngineSettings.defaults(), EngineObserver.NONE).start()) {
            assertInstanceOf(BailingMoeConfig.class, engine.config());
            List<Golden.Prompt> prompts = Golden.prompts("tiny-ring-lite-a");
            List<Collector> collectors = new ArrayList<>();
            for (Golden.Prompt p : prompts) {
                Collector c = new Collector();
                collectors.add(c);
                engine.submit(request(p.inputIds(), SamplingParams.greedy(), 24), c);
            }
            SamplingParams seeded = new SamplingParams(0.9, 40, 0.95, 0, 1.0, 0, 0, 77);
            Collector sampled = new Collector();
            engine.submit(request(prompts.getFirst().inputIds(), seeded, 20), sampled);
            for (int i = 0; i < prompts.size(); i++) {
                assertInstanceOf(Finished.class, collectors.get(i).await());
                assertArrayEquals(prompts.get(i).greedy24(), collectors.get(i).ids(), prompts.get(i).name());
                int[] solo = Generator.generate(lite.forward(), prompts.get(i).inputIds(), SamplingParams.greedy(),
                        new StoppingParams(24, Set.of(), true), null).tokens();
                assertArrayEquals(solo, collectors.get(i).ids(), "engine = generator, " + prompts.get(i).name());
            }
            assertInstanceOf(Finished.class, sampled.await());
            assertArrayEquals(Generator.generate(lite.forward(), prompts.getFirst().inputIds(), seeded, new StoppingParams(20, Set.of(), true), null)
                    .tokens(), sampled.ids(), "seeded sampling through the engine = generator");
            assertTrue(engine.awaitIdle(Duration.ofSeconds(5)));
            assertEquals(engine.kvTotalBlocks(), engine.load().freeBlocks());
        }
    }

    @Test
    void stopTokensEosAndLogprobs() throws Exception {
        try (Engine engine = engine(EngineSettings.defaults(), EngineObserver.NONE)) {
            Golden.Prompt text = Golden.prompts("tiny-ring-a").stream().filter(x -> x.name().equals("text")).findFirst().orElseThrow();
            int stopAt = text.greedy24()[5];
            Collector c = new Collector();
            engine.submit(new EngineRequest("s", text.inputIds(), SamplingParams.greedy(), new StoppingParams(24, Set.of(stopAt), false), 3, null), c);
            Finished f = assertInstanceOf(Finished.class, c.await());
            assertEquals(FinishReason.STOP_TOKEN, f.reason());
            int firstStop = 0;
            while (text.greedy24()[firstStop] != stopAt) {
                firstStop++;
            }
            assertEquals(firstStop + 1, c.ids().length, "the stop token is the last token");
            for (EngineEvent e : c.events) {
                if (e instanceof EngineEvent.Tokens t) {
                    assertTrue(t.logprobs()[0] <= 0);
                    assertEquals(3, t.top().getFirst().size());
                    assertEquals(t.ids()[0], t.top().getFirst().getFirst().tokenId(), "greedy picks the most likely token");
                    assertEquals(t.logprobs()[0], t.top().getFirst().getFirst().logprob(), 1e-6);
                }
            }
        }
    }

    @Test
    void fullQueueDrainAndDeadlinesAreReported() throws Exception {
        try (Engine engine = engine(new EngineSettings(1, 1, 16, 16, 64L << 20), EngineObserver.NONE)) {
            CountDownLatch running = new CountDownLatch(1);
            Collector first = new Collector() {
                @Override
                public void onEvent(EngineEvent e) {
                    super.onEvent(e);
                    running.countDown();
                }
            };
            Collector second = new Collector();
            Collector third = new Collector();
            engine.submit(request(prompt(1, 10), SamplingParams.greedy(), 300), first);
            assertTrue(running.await(30, TimeUnit.SECONDS));
            // one running (max-running 1), one may wait (max-waiting 1), the third is refused
            engine.submit(request(prompt(2, 10), SamplingParams.greedy(), 5), second);
            engine.submit(request(prompt(3, 10), SamplingParams.greedy(), 5), third);
            Failed full = assertInstanceOf(Failed.class, third.await());
            assertEquals(ErrorCode.RESOURCE_EXHAUSTED, full.code());
            engine.drain();
            Collector late = new Collector();
            engine.submit(request(prompt(4, 10), SamplingParams.greedy(), 5), late);
            assertEquals(ErrorCode.UNAVAILABLE, assertInstanceOf(Failed.class, late.await()).code());
            assertInstanceOf(Finished.class, first.await());
            assertInstanceOf(Finished.class, second.await());
        }
        try (Engine engine = engine(EngineSettings.defaults(), EngineObserver.NONE)) {
            Collector expired = new Collector();
            engine.submit(new EngineRequest("d", prompt(5, 10), SamplingParams.greedy(), new StoppingParams(500, Set.of(), true), -1,
                    Instant.now().plusMillis(5)), expired);
            Failed f = assertInstanceOf(Failed.class, expired.await());
            assertEquals(ErrorCode.UNAVAILABLE, f.code());
            assertTrue(f.message().contains("deadline"), f.message());
        }
    }
}
