package io.ringserve.worker.engine;

import io.ringserve.model.config.ModelConfig;
import io.ringserve.worker.engine.EngineEvent.ErrorCode;
import io.ringserve.worker.engine.EngineEvent.Failed;
import io.ringserve.worker.engine.EngineEvent.FinishReason;
import io.ringserve.worker.engine.EngineEvent.Finished;
import io.ringserve.worker.engine.EngineEvent.Timings;
import io.ringserve.worker.engine.EngineEvent.TopLogprob;
import io.ringserve.worker.engine.EngineEvent.Usage;
import io.ringserve.worker.engine.StepRunner.Sampled;
import io.ringserve.worker.engine.StepRunner.StepEntry;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Deque;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Continuous batching on one device: requests join and leave at step boundaries; each step runs one forward
 * over every running sequence (one decode token each, then prefill chunks within the step's token budget)
 * against a paged KV cache whose block tables the engine keeps and whose storage the {@link StepRunner} holds. When KV blocks run out the newest running sequence is preempted: its blocks
 * are freed and it is recomputed later from its prompt and the tokens it already produced, so its output
 * does not change. A runner that takes several steps at once (a pipeline head, {@link StepRunner#inFlight()}) gets that
 * many steps of disjoint sequences, each over about its share of them, so its stages work on different steps.
 * All scheduling state is owned by one engine thread; {@link #submit}, {@link #load} and
 * {@link RequestHandle#cancel} may be called from any thread.
 */
public final class Engine implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(Engine.class.getName());
    /** Most top logprobs a request may ask for (as OpenAI's API). */
    public static final int MAX_TOP_LOGPROBS = 20;

    /** What a router needs to place requests: queue lengths and free KV blocks. */
    public record Load(int running, int waiting, int freeBlocks, int totalBlocks, boolean draining) {
        public double kvUsage() {
            return totalBlocks == 0 ? 0 : 1.0 - (double) freeBlocks / totalBlocks;
        }
    }

    /** Cancels a request; the engine frees its KV blocks at the next step boundary. */
    public interface RequestHandle {
        void cancel();
    }

    private final StepRunner runner;
    private final ModelConfig config;
    private final Set<Integer> eosTokenIds;
    private final EngineSettings settings;
    private final EngineObserver observer;
    private final KvBlocks kv;
    private final int contextLength;

    private final LinkedBlockingQueue<Sequence> inbox = new LinkedBlockingQueue<>();
    private final Object wake = new Object();
    private final AtomicLong arrivals = new AtomicLong();
    /** Accepted requests that have not run a step yet (what max-waiting bounds). */
    private final AtomicInteger queued = new AtomicInteger();
    // engine-thread state
    private final Deque<Sequence> waiting = new ArrayDeque<>();
    private final List<Sequence> running = new ArrayList<>();
    /** Steps submitted and not yet applied, oldest first (only with a runner that takes several at once). */
    private final Deque<InFlight> inFlight = new ArrayDeque<>();
    /** The sequences of the steps in flight: not scheduled again, not preempted until their step is applied. */
    private final Set<Sequence> busy = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());

    private final Thread thread;
    private final CountDownLatch stopped = new CountDownLatch(1);
    private volatile boolean closing;
    private volatile boolean draining;
    private volatile boolean crashed;
    private volatile Load load;
    private volatile long steps;

    public Engine(StepRunner runner, Set<Integer> eosTokenIds, EngineSettings settings, EngineObserver observer) {
        this.runner = runner;
        this.config = runner.config();
        this.eosTokenIds = Set.copyOf(eosTokenIds);
        this.settings = settings;
        this.observer = observer;
        long perBlock = runner.kvBytesPerBlock(settings.kvBlockSize());
        int blocks = (int) Math.min(runner.maxKvBlocks(settings.kvBlockSize()), settings.kvBudgetBytes() / perBlock);
        if (blocks < 1) {
            throw new IllegalArgumentException("kv-cache-bytes (" + settings.kvBudgetBytes() + ") is smaller than one KV block ("
                    + perBlock + " bytes)");
        }
        runner.reserveSteps(settings.maxBatchTokens(), settings.maxRunning());
        runner.allocateKv(settings.kvBlockSize(), blocks);
        runner.warmUp(settings.maxRunning());
        this.kv = new KvBlocks(settings.kvBlockSize(), blocks);
        this.contextLength = runner.contextLength();
        this.load = new Load(0, 0, kv.freeBlocks(), kv.totalBlocks(), false);
        this.thread = Thread.ofPlatform().name("engine-loop").daemon(true).unstarted(this::loop);
    }

    public Engine start() {
        thread.start();
        return this;
    }

    public ModelConfig config() {
        return config;
    }

    public EngineSettings settings() {
        return settings;
    }

    public int kvBlockSize() {
        return kv.blockSize();
    }

    public int kvTotalBlocks() {
        return kv.totalBlocks();
    }

    /** Longest prompt + generated tokens one sequence may have. */
    public int contextLength() {
        return contextLength;
    }

    public Set<Integer> eosTokenIds() {
        return eosTokenIds;
    }

    public Load load() {
        return load;
    }

    /** Steps run since start (for tests and liveness). */
    public long steps() {
        return steps;
    }

    /** The engine thread runs and has not died of an error. */
    public boolean isAlive() {
        return thread.isAlive() && !crashed;
    }

    public boolean isDraining() {
        return draining;
    }

    /**
     * Queues a request. Invalid or unservable requests get their {@link Failed} event at once, on the
     * calling thread; accepted ones get theirs on the engine thread.
     */
    public RequestHandle submit(EngineRequest request, EngineListener listener) {
        Failed refusal = validate(request);
        if (refusal == null && draining) {
            refusal = new Failed(ErrorCode.UNAVAILABLE, "the worker is draining and accepts no new requests", null);
        }
        if (refusal == null && (closing || !isAlive())) {
            refusal = new Failed(ErrorCode.UNAVAILABLE, "the engine is not running", null);
        }
        String missing = refusal == null ? runner.unavailable() : null;
        if (missing != null) {
            refusal = new Failed(ErrorCode.UNAVAILABLE, missing, null);
        }
        if (refusal == null && queued.incrementAndGet() > settings.maxWaiting()) {
            queued.decrementAndGet();
            refusal = new Failed(ErrorCode.RESOURCE_EXHAUSTED, "the worker's queue is full (" + settings.maxWaiting() + " waiting)", null);
        }
        if (refusal != null) {
            observer.failed(refusal.code());
            listener.onEvent(refusal);
            return () -> { };
        }
        Sequence seq = new Sequence(request, listener, arrivals.incrementAndGet());
        inbox.add(seq);
        signal();
        return seq;
    }

    private Failed validate(EngineRequest r) {
        if (r.prompt().length == 0) {
            return new Failed(ErrorCode.INVALID_REQUEST, "the prompt is empty", "prompt_token_ids");
        }
        for (int id : r.prompt()) {
            if (id < 0 || id >= config.vocabSize()) {
                return new Failed(ErrorCode.INVALID_REQUEST, "prompt token id " + id + " is outside the vocabulary [0, " + config.vocabSize() + ")",
                        "prompt_token_ids");
            }
        }
        if (r.replayed() >= r.prompt().length) {
            return new Failed(ErrorCode.INVALID_REQUEST, "replayed_tokens (" + r.replayed() + ") must be smaller than the prompt ("
                    + r.prompt().length + " tokens)", "replayed_tokens");
        }
        long total = (long) r.prompt().length + r.stopping().maxNewTokens();
        if (total > contextLength) {
            return new Failed(ErrorCode.INVALID_REQUEST, "prompt (" + r.prompt().length + " tokens) + max new tokens (" + r.stopping().maxNewTokens()
                    + ") = " + total + " exceeds the context length " + contextLength, "max_new_tokens");
        }
        if (kv.blocksFor((int) total) > kv.totalBlocks()) {
            return new Failed(ErrorCode.RESOURCE_EXHAUSTED, "prompt + max new tokens (" + total + ") needs more KV cache than this worker has ("
                    + (long) kv.totalBlocks() * kv.blockSize() + " positions)", "max_new_tokens");
        }
        if (r.sampling().topK() > config.vocabSize()) {
            return new Failed(ErrorCode.INVALID_REQUEST, "top_k (" + r.sampling().topK() + ") is larger than the vocabulary (" + config.vocabSize() + ")",
                    "top_k");
        }
        if (r.topLogprobs() > MAX_TOP_LOGPROBS) {
            return new Failed(ErrorCode.INVALID_REQUEST, "top_logprobs (" + r.topLogprobs() + ") must be <= " + MAX_TOP_LOGPROBS, "top_logprobs");
        }
        for (int id : r.stopping().stopTokenIds()) {
            if (id < 0 || id >= config.vocabSize()) {
                return new Failed(ErrorCode.INVALID_REQUEST, "stop token id " + id + " is outside the vocabulary", "stop_token_ids");
            }
        }
        return null;
    }

    /** Refuses new requests from now on; running and queued ones continue. */
    public void drain() {
        draining = true;
        publishLoad();
    }

    /** Waits until nothing is queued or running. */
    public boolean awaitIdle(Duration timeout) throws InterruptedException {
        long end = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < end) {
            Load l = load;
            if (l.running() == 0 && l.waiting() == 0 && inbox.isEmpty()) {
                return true;
            }
            Thread.sleep(10);
        }
        return false;
    }

    /**
     * A one-token forward on the calling thread with a private cache, proving the weights and kernels still
     * compute finite logits; it does not touch the engine's state.
     */
    public boolean selfTest() {
        return runner.selfTest();
    }

    /** Stops the loop; whatever is still queued or running ends with an unavailable error. */
    @Override
    public void close() {
        closing = true;
        signal();
        try {
            if (thread.isAlive() && !stopped.await(30, TimeUnit.SECONDS)) {
                LOG.warning("engine loop did not stop within 30 s");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    // ---- engine thread -----------------------------------------------------------------------------

    private void signal() {
        synchronized (wake) {
            wake.notifyAll();
        }
    }

    private void loop() {
        try {
            while (!closing) {
                try {
                    admitArrivals();
                    if (running.isEmpty() && waiting.isEmpty() && inFlight.isEmpty()) {
                        synchronized (wake) {
                            if (inbox.isEmpty() && !closing) {
                                wake.wait(100);
                            }
                        }
                        continue;
                    }
                    if (runner.inFlight() > 1) {
                        pipelinedStep();
                    } else {
                        step();
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                } catch (RuntimeException e) {
                    // a bug in scheduling: fail what is in flight rather than leave it hanging
                    LOG.log(Level.SEVERE, "engine step failed", e);
                    for (Sequence s : List.copyOf(running)) {
                        fail(s, ErrorCode.INTERNAL, "internal error: " + e);
                    }
                    inFlight.clear();
                    busy.clear();
                }
            }
        } catch (Throwable t) {
            crashed = true;
            LOG.log(Level.SEVERE, "engine loop died", t);
        } finally {
            admitArrivals();
            for (Sequence s : List.copyOf(running)) {
                fail(s, ErrorCode.UNAVAILABLE, "the worker is shutting down");
            }
            for (Sequence s : List.copyOf(waiting)) {
                fail(s, ErrorCode.UNAVAILABLE, "the worker is shutting down");
            }
            publishLoad();
            stopped.countDown();
        }
    }

    private void admitArrivals() {
        Sequence s;
        while ((s = inbox.poll()) != null) {
            waiting.addLast(s);
        }
    }

    /** One scheduling round and one forward pass. */
    private void step() {
        long t0 = System.nanoTime();
        Planned p = plan(t0, Integer.MAX_VALUE);
        if (p == null) {
            return;
        }
        Sampled[] sampled;
        try {
            sampled = runner.step(p.entries());
        } catch (StepRunner.UnavailableException e) {
            failEverything(e);
            return;
        } catch (RuntimeException e) {
            failBatch(p, e);
            return;
        }
        apply(p, sampled);
    }

    /**
     * With a runner that takes several steps at once ({@link StepRunner#inFlight()}: a pipeline head with steps-in-flight above 1): fills
     * the runner with steps of disjoint sequences, each taking about its share of the active sequences, then waits for
     * the oldest and applies it. While one step is in the chain's later stages the next runs on the earlier ones.
     */
    private void pipelinedStep() throws InterruptedException {
        int slots = runner.inFlight();
        while (inFlight.size() < slots) {
            int active = running.size() + waiting.size();
            Planned p = plan(System.nanoTime(), Math.max(1, (active + slots - 1) / slots));
            if (p == null) {
                break;
            }
            java.util.concurrent.CompletableFuture<Sampled[]> result;
            try {
                result = runner.submit(p.entries());
            } catch (StepRunner.UnavailableException e) {
                failEverything(e);
                return;
            } catch (RuntimeException e) {
                failBatch(p, e);
                continue;
            }
            busy.addAll(p.batch());
            inFlight.addLast(new InFlight(p, result));
        }
        InFlight oldest = inFlight.pollFirst();
        if (oldest == null) {
            return;
        }
        Sampled[] sampled;
        try {
            sampled = oldest.result().get();
        } catch (java.util.concurrent.ExecutionException e) {
            if (e.getCause() instanceof StepRunner.UnavailableException u) {
                failEverything(u);
            } else {
                failBatch(oldest.plan(), e.getCause() instanceof RuntimeException r ? r : new IllegalStateException(e.getCause()));
            }
            return;
        } finally {
            busy.removeAll(oldest.plan().batch()); // the step is over, whatever its outcome
        }
        apply(oldest.plan(), sampled);
    }

    /** A step the scheduler chose: its sequences, how many tokens each, the runner's entries, and what it counts. */
    private record Planned(long t0, List<Sequence> batch, List<Integer> counts, List<StepEntry> entries, int tokens, int promptTokens) {
    }

    /** A step submitted to a runner with several in flight, and its result to come. */
    private record InFlight(Planned plan, java.util.concurrent.CompletableFuture<Sampled[]> result) {
    }

    /**
     * The scheduling round: drops cancelled and expired requests, then takes decode tokens (one each), then running
     * prefills, both oldest first, then waiting requests, within the step's token budget and at most {@code maxSeqs}
     * sequences, none of them in a step still in flight.
     *
     * @return the step, or null when nothing can run now
     */
    private Planned plan(long t0, int maxSeqs) {
        dropCancelledAndExpired(t0);

        int budget = settings.maxBatchTokens();
        List<Sequence> batch = new ArrayList<>();
        List<Integer> counts = new ArrayList<>();
        // decode tokens first (one each), then running prefills, both oldest first
        List<Sequence> order = new ArrayList<>(running);
        order.sort(Comparator.comparing((Sequence s) -> s.pending() > 1).thenComparingLong(s -> s.arrival));
        for (Sequence s : order) {
            if (budget == 0 || batch.size() >= maxSeqs) {
                break;
            }
            if (!running.contains(s) || busy.contains(s)) {
                continue; // preempted below for an older sequence, or in a step still in flight
            }
            int n = Math.min(s.pending(), budget);
            if (!reserve(s, n, batch)) {
                continue;
            }
            batch.add(s);
            counts.add(n);
            budget -= n;
        }
        while (budget > 0 && batch.size() < maxSeqs && running.size() < settings.maxRunning() && !waiting.isEmpty()) {
            Sequence s = waiting.peekFirst();
            int n = Math.min(s.pending(), budget);
            if (!s.blocks.ensureCapacity(s.computed + n)) {
                break; // wait for blocks to free up
            }
            waiting.removeFirst();
            running.add(s);
            if (s.firstScheduled == 0) {
                s.firstScheduled = t0;
                queued.decrementAndGet();
            }
            batch.add(s);
            counts.add(n);
            budget -= n;
        }
        publishLoad();
        if (batch.isEmpty()) {
            return null;
        }

        List<StepEntry> entries = new ArrayList<>(batch.size());
        int tokens = 0;
        int promptTokens = 0;
        for (int i = 0; i < batch.size(); i++) {
            Sequence s = batch.get(i);
            int n = counts.get(i);
            StepRunner.Sampling sampling = s.computed + n < s.length ? null
                    : new StepRunner.Sampling(s.sampler, s.tokens, s.length, s.promptLength, s.request.topLogprobs());
            entries.add(new StepEntry(s.arrival, Arrays.copyOfRange(s.tokens, s.computed, s.computed + n), s.computed, s.blocks.ids(), sampling));
            tokens += n;
            promptTokens += Math.max(0, Math.min(s.promptLength, s.computed + n) - s.computed);
        }
        return new Planned(t0, batch, counts, entries, tokens, promptTokens);
    }

    /** The runner's state for every sequence is gone (a pipeline stage was lost): nothing in flight can go on here. */
    private void failEverything(StepRunner.UnavailableException e) {
        LOG.warning("the runner is unavailable, failing " + running.size() + " running and " + waiting.size() + " waiting requests: "
                + e.getMessage());
        for (Sequence s : List.copyOf(running)) {
            fail(s, ErrorCode.UNAVAILABLE, e.getMessage());
        }
        for (Sequence s : List.copyOf(waiting)) {
            fail(s, ErrorCode.UNAVAILABLE, e.getMessage());
        }
        inFlight.clear(); // their sequences failed above; their results, if any come, are not waited for
        busy.clear();
        publishLoad();
    }

    private void failBatch(Planned p, RuntimeException e) {
        LOG.log(Level.SEVERE, "forward pass failed for a batch of " + p.batch().size(), e);
        for (Sequence s : p.batch()) {
            if (!s.done) {
                fail(s, ErrorCode.INTERNAL, "forward pass failed: " + e.getMessage());
            }
        }
        publishLoad();
    }

    /** A step's results: the sequences advance (those that ended while it was in flight are left as they are). */
    private void apply(Planned p, Sampled[] sampled) {
        int generated = 0;
        for (int i = 0; i < p.batch().size(); i++) {
            Sequence s = p.batch().get(i);
            if (s.done) {
                continue; // cancelled or expired while its step was in flight
            }
            s.computed += p.counts().get(i);
            if (s.computed < s.length) {
                continue; // still prefilling
            }
            try {
                if (advance(s, sampled[i])) {
                    generated++;
                }
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "request " + s.request.id() + " failed", e);
                fail(s, ErrorCode.INTERNAL, "internal error: " + e.getMessage());
            }
        }
        steps++;
        observer.tokens(p.promptTokens(), generated);
        observer.step(p.batch().size(), p.tokens(), Duration.ofNanos(System.nanoTime() - p.t0()));
        publishLoad();
    }

    /**
     * Makes room for n more positions of s, preempting the newest other running sequences not yet in
     * this step's batch nor in a step still in flight; if s itself is the newest, s is preempted.
     */
    private boolean reserve(Sequence s, int n, List<Sequence> batch) {
        while (!s.blocks.ensureCapacity(s.computed + n)) {
            Sequence victim = null;
            for (Sequence r : running) {
                if (!batch.contains(r) && !busy.contains(r) && (victim == null || r.arrival > victim.arrival)) {
                    victim = r;
                }
            }
            if (victim == null || victim == s || victim.arrival < s.arrival) {
                preempt(s);
                return false;
            }
            preempt(victim);
        }
        return true;
    }

    private void preempt(Sequence s) {
        s.blocks.release();
        s.computed = 0;
        running.remove(s);
        waiting.addFirst(s);
        s.preemptions++;
        observer.preempted();
    }

    /** Samples the next token of a sequence whose every token is now in the cache; true if it emitted one. */
    private boolean advance(Sequence s, Sampled sampled) {
        int id = sampled.token();
        s.tokens[s.length++] = id;
        s.generated++;
        long now = System.nanoTime();
        if (s.firstToken == 0) {
            s.firstToken = now;
            observer.firstToken(Duration.ofNanos(now - s.submitted));
        } else {
            observer.interTokenLatency(Duration.ofNanos(now - s.lastToken));
        }
        s.lastToken = now;
        float[] logprobs = Float.isNaN(sampled.logprob()) ? null : new float[] {sampled.logprob()};
        List<List<TopLogprob>> top = sampled.top() == null ? null : List.of(sampled.top());
        emit(s, new EngineEvent.Tokens(new int[] {id}, logprobs, top));
        if (s.done) {
            return true;
        }
        if (!s.request.stopping().ignoreEos() && eosTokenIds.contains(id)) {
            finish(s, FinishReason.EOS);
        } else if (s.request.stopping().stopTokenIds().contains(id)) {
            finish(s, FinishReason.STOP_TOKEN);
        } else if (s.generated >= s.request.stopping().maxNewTokens()) {
            finish(s, FinishReason.LENGTH);
        }
        return true;
    }

    private void dropCancelledAndExpired(long now) {
        Instant wall = Instant.now();
        for (Sequence s : List.copyOf(running)) {
            checkAlive(s, wall);
        }
        for (Sequence s : List.copyOf(waiting)) {
            checkAlive(s, wall);
        }
    }

    private void checkAlive(Sequence s, Instant now) {
        if (s.cancelled) {
            finish(s, FinishReason.CANCELLED);
        } else if (s.request.deadline() != null && now.isAfter(s.request.deadline())) {
            fail(s, ErrorCode.UNAVAILABLE, "deadline exceeded after " + Duration.ofNanos(System.nanoTime() - s.submitted).toMillis() + " ms");
        }
    }

    private void finish(Sequence s, FinishReason reason) {
        release(s);
        long now = System.nanoTime();
        Timings timings = new Timings(
                Duration.ofNanos((s.firstScheduled == 0 ? now : s.firstScheduled) - s.submitted),
                s.firstToken == 0 ? Duration.ZERO : Duration.ofNanos(s.firstToken - s.submitted),
                Duration.ofNanos(now - s.submitted));
        observer.finished(reason, s.promptLength, s.generated);
        emit(s, new Finished(reason, new Usage(s.promptLength, s.generated, 0), timings));
    }

    private void fail(Sequence s, ErrorCode code, String message) {
        release(s);
        observer.failed(code);
        emit(s, new Failed(code, message, null));
    }

    private void release(Sequence s) {
        if (!s.done && s.firstScheduled == 0) {
            queued.decrementAndGet();
        }
        s.done = true;
        s.blocks.release();
        runner.release(s.arrival);
        running.remove(s);
        waiting.remove(s);
    }

    /** Delivers an event; a listener that throws cancels its own request and nothing else. */
    private void emit(Sequence s, EngineEvent e) {
        try {
            s.listener.onEvent(e);
        } catch (RuntimeException ex) {
            LOG.log(Level.WARNING, "listener of request " + s.request.id() + " failed; cancelling it", ex);
            s.cancelled = true;
            if (!s.done) {
                release(s);
            }
        }
    }

    private void publishLoad() {
        load = new Load(running.size(), waiting.size(), kv.freeBlocks(), kv.totalBlocks(), draining);
    }

    /** One request's state, touched only by the engine thread (except {@link #cancel}). */
    private final class Sequence implements RequestHandle {
        final EngineRequest request;
        final EngineListener listener;
        final long arrival;
        final Sampler sampler;
        final KvBlocks.Table blocks;
        final int[] tokens; // prompt, then generated tokens
        final int promptLength;
        final long submitted = System.nanoTime();
        int length;
        int computed; // positions whose K/V are in the cache
        int generated;
        int preemptions;
        long firstScheduled;
        long firstToken;
        long lastToken;
        boolean done;
        volatile boolean cancelled;

        Sequence(EngineRequest request, EngineListener listener, long arrival) {
            this.request = request;
            this.listener = listener;
            this.arrival = arrival;
            this.sampler = Sampler.of(request.sampling());
            this.blocks = kv.newTable();
            // replayed tokens sit at the end of the prompt but are output: penalties and usage treat them so
            this.promptLength = request.prompt().length - request.replayed();
            this.tokens = Arrays.copyOf(request.prompt(), request.prompt().length + request.stopping().maxNewTokens());
            this.length = request.prompt().length;
            this.sampler.skip(request.replayed());
        }

        /** Tokens not yet in the cache. */
        int pending() {
            return length - computed;
        }

        @Override
        public void cancel() {
            cancelled = true;
            signal();
        }
    }
}
