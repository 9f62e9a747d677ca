package io.ringserve.worker.pipeline;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusException;
import io.ringserve.model.config.ModelConfig;
import io.ringserve.protocol.v1.HiddenDtype;
import io.ringserve.protocol.v1.StageEntry;
import io.ringserve.protocol.v1.StageReady;
import io.ringserve.protocol.v1.StageResult;
import io.ringserve.protocol.v1.StageStep;
import io.ringserve.worker.engine.ShardRunner;
import io.ringserve.worker.engine.StepRunner;
import io.ringserve.worker.reference.LayerRange;
import io.ringserve.worker.reference.ReferenceForward;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The pipeline head as a {@link StepRunner}: the engine on this worker schedules, allocates KV blocks and
 * decides what to sample exactly as on a whole-model worker; this runner holds layers {@code [0, a)} and the
 * embeddings, and the rest of the chain (reached through one Stage stream to the next stage) holds
 * {@code [a, total)}, the final norm and the lm_head, and samples.
 *
 * <p>Each step is split into micro-batches (as many as stages, by default): the head runs its layers on
 * micro-batch i+1 while the next stage runs micro-batch i, so within a step no stage waits for the whole batch.
 * A micro-batch's message carries its plan (sequence ids, positions, block table changes, sequences released
 * since the last step, sampling state for sequences new to the last stage) and the hidden states: float32 by
 * default, so the chain computes bit for bit what one worker of the same backend computes, or bfloat16
 * ({@link Settings#hiddenDtype}). The head's layers run on the CPU reference or a GPU ({@link ShardRunner}).
 *
 * <p>The chain is whole once the next stage answered the hello with StageReady (every stage after it joined).
 * While it is not, {@link #unavailable()} says why (the engine refuses requests) and a background thread
 * reconnects every {@code reconnectDelay}. A stage that dies (the stream ends) or stalls (a step unanswered
 * for {@code stageTimeout}) breaks the chain: the step in progress throws {@link UnavailableException} and the
 * engine fails every request in flight with UNAVAILABLE, since the stages' KV went with the session.
 *
 * <p>{@link #step} and {@link #release} run on the engine thread; chain state changes on gRPC threads and the
 * connector thread. Legend: T = tokens of a micro-batch, D = hidden.
 */
public final class PipelineRunner implements StepRunner {
    private static final Logger LOG = Logger.getLogger(PipelineRunner.class.getName());

    /**
     * @param stageTimeout   how long a step (or the hello) may wait for the rest of the chain before it counts as lost
     * @param microBatches   micro-batches per step: 0 = one per stage, 1 = no splitting
     * @param reconnectDelay pause between attempts to (re)join the chain
     * @param hiddenDtype    how the steps' hidden states travel: float32 (exact) or bfloat16 (half the bytes; each stage's
     *                       input rounded to bf16)
     * @param stepsInFlight  engine steps in the chain at once, of disjoint sequences (1: one at a time; the stages then
     *                       take turns within a step only, through micro-batches)
     */
    public record Settings(Duration stageTimeout, int microBatches, Duration reconnectDelay, HiddenDtype hiddenDtype, int stepsInFlight) {
        public Settings {
            if (stepsInFlight < 1) {
                throw new IllegalArgumentException("steps-in-flight (" + stepsInFlight + ") must be >= 1 (1: one step at a time)");
            }
            if (hiddenDtype != HiddenDtype.HIDDEN_FLOAT32 && hiddenDtype != HiddenDtype.HIDDEN_BFLOAT16) {
                throw new IllegalArgumentException("hidden dtype " + hiddenDtype + " is not an encoding (float32 or bfloat16)");
            }
            if (stageTimeout.isNegative() || stageTimeout.isZero()) {
                throw new IllegalArgumentException("stage-timeout (" + stageTimeout + ") must be > 0");
            }
            if (microBatches < 0) {
                throw new IllegalArgumentException("micro-batches (" + microBatches + ") must be >= 0 (0: one per stage)");
            }
            if (reconnectDelay.isNegative()) {
                throw new IllegalArgumentException("reconnect delay (" + reconnectDelay + ") must be >= 0");
            }
        }

        /** One step at a time. */
        public Settings(Duration stageTimeout, int microBatches, Duration reconnectDelay, HiddenDtype hiddenDtype) {
            this(stageTimeout, microBatches, reconnectDelay, hiddenDtype, 1);
        }

        /** Hidden states sent as float32: a chain computes bit for bit what one worker of the same backend computes. */
        public Settings(Duration stageTimeout, int microBatches, Duration reconnectDelay) {
            this(stageTimeout, microBatches, reconnectDelay, HiddenDtype.HIDDEN_FLOAT32, 1);
        }

        /**
         * The encoding a head uses unless told (stage-dtype {@code auto}): bfloat16 on a GPU, whose traffic it halves;
         * float32 on the CPU reference, whose chains then compute bit for bit what one worker computes.
         */
        public static HiddenDtype automaticHiddenDtype(boolean onGpu) {
            return onGpu ? HiddenDtype.HIDDEN_BFLOAT16 : HiddenDtype.HIDDEN_FLOAT32;
        }

        public static Settings defaults() {
            return new Settings(Duration.ofSeconds(30), 0, Duration.ofSeconds(1));
        }
    }

    /** Hears the chain become whole or broken, in order (on gRPC or connector threads, under the runner's lock: must not block). */
    public interface ChainListener {
        void changed(boolean whole, String reason);
    }

    private final ShardRunner shard;
    private final ModelConfig config;
    private final LayerRange layers;
    private final StageIdentity identity;
    private final String target;
    private final ManagedChannel channel;
    private final Settings settings;
    private final int maxBatchTokens;
    private final HiddenDtype dtype;
    private final ScheduledExecutorService connector;
    private final AtomicLong sessions = new AtomicLong();
    private volatile ChainListener listener = (whole, reason) -> { };
    private volatile boolean closed;
    private boolean ownsShard;

    // chain state
    private volatile Link link; // the whole chain's session, or null
    private volatile String brokenReason;
    private volatile int stages;

    // engine-thread state
    private boolean allocated;
    private int maxSequences; // the engine's max-running (reserveSteps), 0 until told
    private int blockSize;
    private int blocks;
    private long trackedSession = -1;
    private final Map<Long, int[]> sentTables = new HashMap<>();
    private final Set<Long> samplerSent = new HashSet<>();
    private final Map<Long, Integer> historySent = new HashMap<>();
    private final List<Long> pendingReleases = new ArrayList<>();
    private long nextStepId;

    // measurements (engine thread and gRPC threads, under the runner's lock)
    private int open;          // steps in the chain now
    private int mostOpen;      // the most at once since start
    private long openSince;    // when the chain last went from no step to one
    private long statSteps;
    private long statMicroBatches;
    private long statWall;
    private long[] statBusy = new long[0];

    /** A head on the CPU reference: {@link ReferenceShard} over {@code forward}. */
    public PipelineRunner(ReferenceForward forward, StageIdentity identity, String nextStage, int maxBatchTokens, Settings settings) {
        this(new ReferenceShard(forward), identity, nextStage, maxBatchTokens, settings);
    }

    /**
     * @param shard          the head's layers (starting at 0, not reaching the end), on the CPU or a GPU; the runner does
     *                       not own it
     * @param nextStage      host:port of the next stage
     * @param maxBatchTokens the engine's token budget per step, announced to the stages
     */
    public PipelineRunner(ShardRunner shard, StageIdentity identity, String nextStage, int maxBatchTokens, Settings settings) {
        LayerRange range = shard.layers();
        if (!range.isFirst() || range.isLast()) {
            throw new IllegalArgumentException("a pipeline head holds layer 0 and not the last layer; this shard holds " + range);
        }
        if (!range.equals(identity.layers())) {
            throw new IllegalArgumentException("the shard holds layers " + range + ", the identity says " + identity.layers());
        }
        this.shard = shard;
        this.config = shard.config();
        this.layers = range;
        this.identity = identity;
        this.target = nextStage;
        this.settings = settings;
        this.dtype = settings.hiddenDtype();
        this.maxBatchTokens = maxBatchTokens;
        this.brokenReason = "not connected to the next stage (" + nextStage + ") yet";
        this.channel = StageChannels.open(nextStage);
        this.connector = Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().name("pipeline-connect").daemon(true).factory());
    }

    /** Makes {@link #close} close the head's shard too (a runner built for one use, as a benchmark's). */
    public PipelineRunner owningShard() {
        this.ownsShard = true;
        return this;
    }

    public void setChainListener(ChainListener listener) {
        this.listener = listener;
    }

    public LayerRange layers() {
        return layers;
    }

    public String nextStage() {
        return target;
    }

    /** Every stage joined: requests can run. */
    public boolean isWhole() {
        return link != null;
    }

    /** Stages in the chain, this one included, as the last handshake reported; 0 before the first. */
    public int stages() {
        return stages;
    }

    @Override
    public ModelConfig config() {
        return config;
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
    public void reserveSteps(int maxBatchTokens, int maxSequences) {
        this.maxSequences = maxSequences;
        shard.reserveSteps(maxBatchTokens, maxSequences);
    }

    /** Allocates the head's KV and starts joining the chain (the hello announces the block count). */
    @Override
    public void allocateKv(int blockSize, int blocks) {
        if (allocated) {
            throw new IllegalStateException("KV storage is already allocated");
        }
        shard.allocateKv(blockSize, blocks);
        this.allocated = true;
        this.blockSize = blockSize;
        this.blocks = blocks;
        connector.execute(this::connect);
    }

    /** The head's own preparation (a CUDA shard captures its decode graphs); the stages prepare when they join. */
    @Override
    public void warmUp(int maxSequences) {
        shard.warmUp(maxSequences);
    }

    @Override
    public String unavailable() {
        return link != null ? null : "the pipeline is not whole: " + brokenReason;
    }

    /** Why the chain is not whole, or null when it is. */
    public String brokenReason() {
        return link != null ? null : brokenReason;
    }

    // ---- the chain ---------------------------------------------------------------------------------

    /** One session with the next stage and, through it, the rest of the chain. */
    private final class Link implements NextStage.Listener {
        final long session = sessions.incrementAndGet();
        final CompletableFuture<StageReady> ready = new CompletableFuture<>();
        /** Micro-batches sent and not answered, by step id: completed by the chain's answer, failed when the session ends. */
        final Map<Long, CompletableFuture<StageResult>> waiting = new ConcurrentHashMap<>();
        volatile NextStage next;
        volatile String lossReason;
        volatile boolean ended;

        @Override
        public void ready(StageReady r) {
            ready.complete(r);
        }

        @Override
        public void result(StageResult result) {
            CompletableFuture<StageResult> f = waiting.remove(result.getStepId());
            if (f == null) {
                lose("protocol error: the chain answered step " + result.getStepId() + ", which is not waiting for an answer");
                return;
            }
            f.complete(result);
        }

        @Override
        public void closed(Status status) {
            ended = true;
            // the chain is marked broken before a waiting step hears of it: nothing new is accepted meanwhile
            String reason = lossReason != null ? lossReason : describe(status);
            chainLost(this, reason);
            // every step still in the chain failed with it
            UnavailableException lost = new UnavailableException("the pipeline broke during a step: " + reason);
            for (Long id : List.copyOf(waiting.keySet())) {
                CompletableFuture<StageResult> f = waiting.remove(id);
                if (f != null) {
                    f.completeExceptionally(lost);
                }
            }
            ready.completeExceptionally(status.asException());
        }

        /**
         * Ends the session from this side, {@code reason} being what the chain's state reports; the chain counts as
         * broken from now on, not only once the stream's end arrives.
         */
        void lose(String reason) {
            lossReason = reason;
            chainLost(this, reason);
            next.close(reason);
        }
    }

    private String describe(Status status) {
        String d = status.getDescription() != null ? status.getDescription() : "";
        if (status.getCode() == Status.Code.FAILED_PRECONDITION) {
            return "refused: " + d;
        }
        return "lost the next stage (" + target + "): " + status.getCode() + (d.isEmpty() ? "" : ": " + d);
    }

    /** On the connector thread: opens a session and waits for the chain's answer; retries later on failure. */
    private void connect() {
        if (closed || link != null) {
            return;
        }
        Link l = new Link();
        channel.resetConnectBackoff(); // a stage that just came back is tried now, not after the channel's backoff
        l.next = NextStage.open(channel, target, identity.hello(blockSize, blocks, dtype, maxBatchTokens, maxSequences), l);
        String failure;
        try {
            StageReady r = l.ready.get(settings.stageTimeout().toMillis(), TimeUnit.MILLISECONDS);
            if (r.getLayers().getStart() != layers.end() || r.getLayers().getEnd() != layers.total()) {
                failure = "refused: the stages after the head hold layers " + StageWire.text(r.getLayers()) + ", the head needs " + layers.end() + "-"
                        + layers.total();
                l.lose(failure);
            } else {
                synchronized (this) {
                    if (closed) {
                        l.lose("the head is shutting down");
                        return;
                    }
                    if (!l.ended) { // else the session ended right after it was ready: chainLost() did not see it as the chain's
                        stages = 1 + r.getStages();
                        link = l;
                        brokenReason = null;
                        // under the lock, so listeners hear whole and broken in the order they happened
                        listener.changed(true, null);
                    }
                }
                if (link != l) {
                    throw new ExecutionException(new StatusException(Status.UNAVAILABLE.withDescription("the session ended right after it was ready")));
                }
                LOG.info("pipeline whole: " + stages + " stages, head layers " + layers + ", next stage " + target + " (session " + l.session + ")");
                return;
            }
        } catch (TimeoutException e) {
            failure = "the next stage (" + target + ") did not answer the hello within " + settings.stageTimeout();
            l.lose(failure);
        } catch (ExecutionException e) {
            failure = e.getCause() instanceof StatusException se ? describe(se.getStatus()) : String.valueOf(e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
        }
        boolean changed;
        synchronized (this) {
            changed = !failure.equals(brokenReason);
            brokenReason = failure;
            if (changed) {
                listener.changed(false, failure);
            }
        }
        if (changed) {
            LOG.warning("pipeline not whole: " + failure + "; retrying every " + settings.reconnectDelay().toMillis() + " ms");
        }
        scheduleConnect();
    }

    private void scheduleConnect() {
        if (!closed) {
            try {
                connector.schedule(this::connect, settings.reconnectDelay().toMillis(), TimeUnit.MILLISECONDS);
            } catch (java.util.concurrent.RejectedExecutionException e) {
                // closing
            }
        }
    }

    /** A whole chain's session ended (a stage died, stalled or refused; or this head closed it). */
    private void chainLost(Link l, String reason) {
        synchronized (this) {
            if (link != l) {
                return; // a session that never became whole: connect() handles it
            }
            link = null;
            brokenReason = reason;
            if (closed) {
                return;
            }
            listener.changed(false, reason);
        }
        LOG.warning("pipeline broken: " + reason);
        scheduleConnect();
    }

    // ---- steps -------------------------------------------------------------------------------------

    @Override
    public int inFlight() {
        return settings.stepsInFlight();
    }

    /** Runs one step to its end: {@link #submit}, then waits for the chain's answers. */
    @Override
    public Sampled[] step(List<StepEntry> batch) {
        CompletableFuture<Sampled[]> result = submit(batch);
        try {
            return result.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            Link l = link;
            if (l != null) {
                l.lose("the head was interrupted while waiting for the chain");
            }
            throw new UnavailableException("the head was interrupted while waiting for the chain");
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException r) {
                throw r;
            }
            throw new IllegalStateException(e.getCause());
        }
    }

    /**
     * Runs the head's layers on each micro-batch of the step and sends it down the chain; returns once all are sent. The
     * future completes with the sampled tokens once the chain answered every micro-batch, or fails with
     * {@link UnavailableException} when the chain broke or an answer took longer than the stage timeout.
     */
    @Override
    public CompletableFuture<Sampled[]> submit(List<StepEntry> batch) {
        if (!allocated) {
            throw new IllegalStateException("allocateKv was not called");
        }
        Link l = link;
        if (l == null || l.ended) {
            String why = l != null && l.lossReason != null ? l.lossReason : brokenReason;
            throw new UnavailableException("the pipeline is not whole: " + (why != null ? why : "the stream to the next stage (" + target + ") ended"));
        }
        if (l.session != trackedSession) {
            // a new session: the stages know nothing; whatever they held for running sequences is gone
            boolean lost = !sentTables.isEmpty();
            sentTables.clear();
            samplerSent.clear();
            historySent.clear();
            pendingReleases.clear();
            trackedSession = l.session;
            if (lost) {
                throw new UnavailableException("the pipeline was re-established; the stages lost the KV cache of the requests in flight");
            }
        }
        int parts = Math.min(batch.size(), settings.microBatches() > 0 ? settings.microBatches() : stages);
        int[] bounds = split(batch, parts);
        long t0 = System.nanoTime();
        opened(t0);
        long headBusy = 0;
        int hidden = config.hiddenSize();
        List<CompletableFuture<StageResult>> answers = new ArrayList<>(bounds.length - 1);
        try {
            for (int g = 0; g + 1 < bounds.length; g++) {
                long c0 = System.nanoTime();
                List<StepEntry> part = batch.subList(bounds[g], bounds[g + 1]);
                int tokens = ShardRunner.tokens(part);
                float[] x = switch (shard.run(part, null)) { // (T, D)
                    case ShardRunner.Hidden h -> h.x();
                    case ShardRunner.Samples s -> throw new IllegalStateException("the head's layers " + layers + " sampled: it holds the last layer");
                };
                long stepId = nextStepId++;
                StageStep.Builder msg = StageStep.newBuilder().setStepId(stepId);
                if (g == 0) {
                    msg.addAllReleased(pendingReleases);
                    pendingReleases.clear();
                }
                for (StepEntry e : part) {
                    msg.addEntries(entry(e));
                }
                msg.setHidden(StageWire.encode(x, tokens, hidden, dtype));
                headBusy += System.nanoTime() - c0;
                CompletableFuture<StageResult> answer = new CompletableFuture<>();
                l.waiting.put(stepId, answer);
                answers.add(answer);
                l.next.send(msg.build());
                if (l.ended) { // the session ended before the step was registered: its end failed nothing of this
                    answer.completeExceptionally(new UnavailableException("the pipeline broke during a step: "
                            + (l.lossReason != null ? l.lossReason : "the stream to the next stage (" + target + ") ended")));
                }
            }
        } catch (RuntimeException e) {
            // the micro-batches already sent are answered into futures nobody waits for
            closed(System.nanoTime());
            throw e;
        }
        long head = headBusy;
        CompletableFuture<?>[] all = answers.toArray(new CompletableFuture<?>[0]);
        return CompletableFuture.allOf(all)
                .orTimeout(settings.stageTimeout().toNanos(), TimeUnit.NANOSECONDS)
                .handle((ok, failure) -> {
                    closed(System.nanoTime());
                    if (failure != null) {
                        Throwable cause = failure instanceof java.util.concurrent.CompletionException ? failure.getCause() : failure;
                        if (cause instanceof TimeoutException) {
                            String reason = "the pipeline stalled: no answer to a step within " + settings.stageTimeout() + " (stage-timeout)";
                            l.lose(reason);
                            throw new UnavailableException(reason);
                        }
                        if (cause instanceof RuntimeException r) {
                            throw r;
                        }
                        throw new UnavailableException("the pipeline broke during a step: " + cause);
                    }
                    return collect(l, batch, bounds, answers, head);
                });
    }

    /** The sampled tokens of a step's answers, in entry order; adds the stages' compute times to the statistics. */
    private Sampled[] collect(Link l, List<StepEntry> batch, int[] bounds, List<CompletableFuture<StageResult>> answers, long headBusy) {
        Sampled[] out = new Sampled[batch.size()];
        long[] busy = new long[Math.max(1, stages)];
        busy[0] = headBusy;
        for (int g = 0; g + 1 < bounds.length; g++) {
            StageResult r = answers.get(g).join();
            int k = 0;
            for (int i = bounds[g]; i < bounds[g + 1]; i++) {
                Sampling s = batch.get(i).sampling();
                if (s != null) {
                    if (k >= r.getSamplesCount()) {
                        String reason = "protocol error: the chain answered step " + r.getStepId() + " with " + r.getSamplesCount() + " samples";
                        l.lose(reason);
                        throw new UnavailableException(reason);
                    }
                    out[i] = StageWire.sampled(r.getSamples(k++), s.topLogprobs());
                }
            }
            // compute_nanos: the last stage first, each stage on the way back appending its own
            for (int j = 0; j < r.getComputeNanosCount(); j++) {
                int stage = r.getComputeNanosCount() - j;
                if (stage < busy.length) {
                    busy[stage] += r.getComputeNanos(j);
                }
            }
        }
        record(bounds.length - 1, busy);
        return out;
    }

    /** The plan of one entry: table changes since what the stages hold, sampling state the last stage lacks. */
    private StageEntry entry(StepEntry e) {
        StageEntry.Builder b = StageEntry.newBuilder().setSequenceId(e.sequenceId()).setStart(e.start()).setTokens(e.tokens().length);
        int[] table = e.blockTable();
        int[] sent = sentTables.get(e.sequenceId());
        int from = 0;
        if (sent != null) {
            while (from < Math.min(sent.length, table.length) && sent[from] == table[from]) {
                from++;
            }
        }
        b.setBlockTableFrom(from);
        for (int i = from; i < table.length; i++) {
            b.addBlockIds(table[i]);
        }
        sentTables.put(e.sequenceId(), table);
        Sampling s = e.sampling();
        if (s != null) {
            b.setSample(true);
            if (samplerSent.add(e.sequenceId())) {
                // the engine's sampler has taken one draw per output token so far (replayed ones included)
                b.setSampling(StageWire.sampling(s.sampler().params(), s.promptLength(), s.historyLength() - s.promptLength(), s.topLogprobs()));
            }
            if (s.sampler().params().hasPenalties()) {
                int from2 = historySent.getOrDefault(e.sequenceId(), 0);
                for (int i = from2; i < s.historyLength(); i++) {
                    b.addHistory(s.history()[i]);
                }
                historySent.put(e.sequenceId(), s.historyLength());
            }
        }
        return b.build();
    }

    /**
     * Splits a batch into at most {@code parts} contiguous micro-batches of about equal token counts.
     *
     * @return boundaries: micro-batch g is entries {@code [bounds[g], bounds[g+1])}
     */
    static int[] split(List<StepEntry> batch, int parts) {
        int n = batch.size();
        parts = Math.max(1, Math.min(parts, n));
        long total = 0;
        for (StepEntry e : batch) {
            total += e.tokens().length;
        }
        int[] bounds = new int[parts + 1];
        bounds[parts] = n;
        int g = 0;
        long acc = 0;
        for (int i = 0; i < n && g < parts - 1; i++) {
            acc += batch.get(i).tokens().length;
            int entriesLeft = n - i - 1;
            int groupsLeft = parts - g - 1;
            if (acc * parts >= total * (g + 1) || entriesLeft == groupsLeft) {
                bounds[++g] = i + 1;
            }
        }
        return bounds;
    }

    @Override
    public void release(long sequenceId) {
        samplerSent.remove(sequenceId);
        historySent.remove(sequenceId);
        if (sentTables.remove(sequenceId) != null) {
            pendingReleases.add(sequenceId);
        }
    }

    /** A step entered the chain at {@code now}: the wall clock runs while any step is in it. */
    private synchronized void opened(long now) {
        if (open++ == 0) {
            openSince = now;
        }
        mostOpen = Math.max(mostOpen, open);
    }

    /** The most engine steps that were in the chain at once since start (at most {@link Settings#stepsInFlight}). */
    public synchronized int mostStepsInFlight() {
        return mostOpen;
    }

    /** A step left the chain (answered, failed or abandoned) at {@code now}. */
    private synchronized void closed(long now) {
        if (--open == 0) {
            statWall += now - openSince;
        }
    }

    private synchronized void record(int microBatches, long[] busy) {
        if (statBusy.length < busy.length) {
            statBusy = java.util.Arrays.copyOf(statBusy, busy.length);
        }
        statSteps++;
        statMicroBatches += microBatches;
        for (int k = 0; k < busy.length; k++) {
            statBusy[k] += busy[k];
        }
    }

    /** Where the stages' time went since start. */
    public synchronized PipelineStats stats() {
        return new PipelineStats(statSteps, statMicroBatches, statWall, statBusy);
    }

    @Override
    public boolean selfTest() {
        return shard.selfTest();
    }

    @Override
    public void close() {
        Link l;
        synchronized (this) {
            closed = true;
            l = link;
        }
        connector.shutdownNow();
        if (l != null) {
            l.lose("the head is shutting down");
        }
        if (ownsShard) {
            shard.close();
        }
        channel.shutdownNow();
        try {
            channel.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException e) {
            LOG.log(Level.FINE, "closing the channel to the next stage", e);
        }
    }
}
